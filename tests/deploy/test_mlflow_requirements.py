"""The exported folder's requirements.txt says where tuner comes from: tuner is not on a package
index, so a bare ``tuner==<version>`` would not install (an MLflow-built environment would fail)."""

from __future__ import annotations

from tuner.deploy.mlflow_model import REQUIREMENTS, tuner_requirement, write


def test_a_git_install_is_pinned_to_its_commit():
    direct = {"url": "https://github.com/example/tuner.git",
              "vcs_info": {"vcs": "git", "commit_id": "0123abcd", "requested_revision": "main"}}
    assert tuner_requirement("0.1.0", direct) == ["tuner @ git+https://github.com/example/tuner.git@0123abcd"]


def test_a_local_folder_or_wheel_is_named_with_a_comment_that_the_path_is_this_machines():
    lines = tuner_requirement("0.1.0", {"url": "file:///work/tuner", "dir_info": {"editable": True}})
    assert lines[-1] == "tuner @ file:///work/tuner"
    assert lines[0].startswith("#") and "0.1.0" in lines[0]
    wheel = tuner_requirement("0.1.0", {"url": "file:///dist/tuner-0.1.0-py3-none-any.whl", "archive_info": {}})
    assert wheel[-1] == "tuner @ file:///dist/tuner-0.1.0-py3-none-any.whl"


def test_an_index_install_pins_the_version():
    assert tuner_requirement("0.1.0", {}) == ["tuner==0.1.0"]
    assert tuner_requirement(None, {}) == ["tuner"]


def test_the_written_file_installs_this_tuner_and_pins_the_libraries(tmp_path):
    """This environment's tuner is an editable install of the checkout (README's install command)."""
    card = {"task": "binary", "classes": [0, 1], "schema": {"numeric": ["a"], "categorical": []},
            "versions": {"python": "3.11.0", "tuner": "0.1.0", "scikit-learn": "1.9.1"}}
    write(tmp_path, card)
    lines = (tmp_path / REQUIREMENTS).read_text().splitlines()
    requirement = [line for line in lines if line.startswith("tuner")]
    assert len(requirement) == 1 and requirement[0] != "tuner==0.1.0"
    assert requirement[0].startswith("tuner @ ")
    assert "scikit-learn==1.9.1" in lines
