"""The fingerprint's provenance: the commit a result came from, with or without a .git."""

import subprocess

from segbench.results import environment


def test_commit_comes_from_git_in_a_checkout_and_marks_uncommitted_changes(tmp_path, monkeypatch):
    def git(*args):
        subprocess.run(["git", "-C", str(tmp_path), *args], check=True, capture_output=True)

    git("init", "-q")
    (tmp_path / "f").write_text("1")
    git("add", "f")
    git("-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "c")
    monkeypatch.setattr(environment, "PROJECT_ROOT", tmp_path)
    monkeypatch.setenv("SEGBENCH_GIT_COMMIT", "from-the-environment")
    clean = environment.git_commit()
    assert len(clean) == 40 and not clean.endswith("-dirty")
    (tmp_path / "f").write_text("2")
    assert environment.git_commit() == clean + "-dirty"


def test_commit_comes_from_segbench_git_commit_without_a_git_folder(tmp_path, monkeypatch):
    monkeypatch.setattr(environment, "PROJECT_ROOT", tmp_path)  # a copied tree: no .git
    monkeypatch.setenv("SEGBENCH_GIT_COMMIT", "0200fa2bf5a5feadbefee26c3688261bd2ee5d71")
    assert environment.git_commit() == "0200fa2bf5a5feadbefee26c3688261bd2ee5d71"
    monkeypatch.delenv("SEGBENCH_GIT_COMMIT")
    assert environment.git_commit() is None
