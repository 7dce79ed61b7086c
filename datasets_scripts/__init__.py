"""Everything that makes data: corpus readers, reconstruction paradigms, offline TTS spoofers, the build CLI."""
