"""Publish the built leaderboard: push it to a branch of any git remote, or upload it to an HF dataset.

    sdbench leaderboard publish --git-remote git@github.com:org/repo.git            # -> gh-pages
    sdbench leaderboard publish --git-remote /srv/mirror.git --branch site
    sdbench leaderboard publish --hf-dataset org/sdbench-leaderboard                 # needs a token

The site is built afresh from the results into a temporary clone (never the user's working tree),
together with the results files, so that what is published is always what the results say. An
existing branch keeps its history (one commit on top); an absent one starts as an orphan branch.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

from sdbench.errors import UserError
from sdbench.leaderboard.submit import results_paths

COMMIT_IDENTITY = ("sdbench leaderboard", "leaderboard@sdbench.invalid")


def stage_site(results_dir: Path, dest: Path) -> list[Path]:
    """Build the site into dest and copy the results beside it (results/NAME.json.gz or .json)."""
    from sdbench.leaderboard.site import build_site

    written = build_site(results_dir, dest)
    for path in results_paths(results_dir):
        target = dest / "results" / path.name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, target)
        written.append(target)
    (dest / ".nojekyll").write_text("")   # GitHub Pages: serve files as they are
    written.append(dest / ".nojekyll")
    return written


def _git(args: list[str], cwd: Path, what: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "GIT_TERMINAL_PROMPT": "0"}   # fail, never hang on a password prompt
    try:
        proc = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, env=env, timeout=300)
    except FileNotFoundError as exc:
        raise UserError("git is not installed", "install git to publish to a git remote") from exc
    except subprocess.TimeoutExpired as exc:
        raise UserError(f"git timed out while {what}", "check the remote URL and the network") from exc
    if proc.returncode != 0:
        last = (proc.stderr.strip().splitlines() or ["(no message)"])[-1]
        raise UserError(f"git failed while {what}: {last}", "check the remote URL, branch and your credentials")
    return proc


def publish_git(results_dir: Path, remote: str, branch: str = "gh-pages") -> str:
    """Push the built site to `branch` of `remote`; returns the pushed commit (or the unchanged head)."""
    if not branch or branch.startswith("-") or " " in branch:
        raise UserError(f"invalid branch name {branch!r}", "pass --branch gh-pages or another branch name")
    with tempfile.TemporaryDirectory(prefix="sdbench-publish-") as tmp:
        repo = Path(tmp) / "site"
        repo.mkdir()
        _git(["init", "-q"], repo, "creating a temporary repository")
        probe = subprocess.run(["git", "ls-remote", "--heads", remote, branch], cwd=repo, capture_output=True,
                               text=True, env={**os.environ, "GIT_TERMINAL_PROMPT": "0"}, timeout=300)
        if probe.returncode != 0:
            last = (probe.stderr.strip().splitlines() or ["(no message)"])[-1]
            raise UserError(f"cannot reach git remote {remote}: {last}", "check the URL and your credentials")
        exists = bool(probe.stdout.strip())
        if exists:
            _git(["fetch", "-q", "--depth", "1", remote, f"refs/heads/{branch}"], repo, f"fetching {branch}")
            _git(["checkout", "-q", "-B", branch, "FETCH_HEAD"], repo, f"checking out {branch}")
            _git(["rm", "-rq", "--ignore-unmatch", "."], repo, "clearing the old site")
        else:
            _git(["checkout", "-q", "--orphan", branch], repo, f"starting branch {branch}")
        n_results = len(results_paths(results_dir))
        stage_site(results_dir, repo)
        _git(["add", "-A", "."], repo, "staging the site")
        if exists and not _git(["status", "--porcelain"], repo, "comparing").stdout.strip():
            return _git(["rev-parse", "HEAD"], repo, "reading the head").stdout.strip()
        name, email = COMMIT_IDENTITY
        identity = []
        if not subprocess.run(["git", "config", "user.email"], cwd=repo, capture_output=True, text=True).stdout.strip():
            identity = ["-c", f"user.name={name}", "-c", f"user.email={email}"]
        _git([*identity, "commit", "-q", "-m", f"sdbench leaderboard: {n_results} result(s)"], repo, "committing")
        _git(["push", "-q", remote, f"HEAD:refs/heads/{branch}"], repo, f"pushing to {branch}")
        return _git(["rev-parse", "HEAD"], repo, "reading the head").stdout.strip()


def publish_hf(results_dir: Path, repo_id: str) -> str:
    """Upload the built site and results to the Hugging Face dataset repo_id; returns its URL."""
    try:
        import huggingface_hub
    except ImportError as exc:
        raise UserError("--hf-dataset needs the huggingface_hub package", "pip install huggingface_hub") from exc
    if repo_id.count("/") != 1 or not all(repo_id.split("/")):
        raise UserError(f"--hf-dataset {repo_id!r} is not ORG/NAME",
                        "pass e.g. --hf-dataset my-org/sdbench-leaderboard")
    token = huggingface_hub.get_token()
    if not token:
        raise UserError("no Hugging Face token found", "run `hf auth login` or set HF_TOKEN")
    with tempfile.TemporaryDirectory(prefix="sdbench-publish-hf-") as tmp:
        stage_site(results_dir, Path(tmp))
        api = huggingface_hub.HfApi(token=token)
        try:
            api.create_repo(repo_id, repo_type="dataset", exist_ok=True)
            info = api.upload_folder(repo_id=repo_id, repo_type="dataset", folder_path=tmp,
                                     commit_message="sdbench leaderboard")
        except Exception as exc:  # network, auth and hub errors: one line, not a traceback
            first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
            raise UserError(f"upload to Hugging Face dataset {repo_id} failed: {first}",
                            "check the network, the token's write access and the repo name") from exc
    return str(getattr(info, "commit_url", None) or f"https://huggingface.co/datasets/{repo_id}")
