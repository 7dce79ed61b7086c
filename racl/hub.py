"""Uploading to the Hugging Face Hub: the one push helper for models, datasets and Spaces.

``racl-export --push`` (model folders), ``racl-build --push`` (hard-sample datasets) and
``space/assemble.py --push`` (the Gradio demo) all create-or-reuse the repo and upload one folder
in one commit through :func:`push_folder`.
"""

from __future__ import annotations

import os


def push_folder(
    folder: str | os.PathLike,
    repo_id: str,
    repo_type: str = "model",
    private: bool = False,
    token: str | None = None,
    commit_message: str = "Upload with racl",
    allow_patterns: list[str] | None = None,
    space_sdk: str | None = None,
) -> str:
    """Create (or reuse) ``repo_id`` and upload ``folder`` in one commit; returns the commit URL."""
    from huggingface_hub import HfApi

    api = HfApi(token=token)
    extra = {"space_sdk": space_sdk} if repo_type == "space" else {}
    api.create_repo(repo_id, repo_type=repo_type, private=private, exist_ok=True, **extra)
    info = api.upload_folder(folder_path=str(folder), repo_id=repo_id, repo_type=repo_type,
                             allow_patterns=allow_patterns, commit_message=commit_message)
    return str(getattr(info, "commit_url", info))


__all__ = ["push_folder"]
