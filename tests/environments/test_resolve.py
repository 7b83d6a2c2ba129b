"""From environment YAML and conda files to pip requirements, interpreters and keys (no builds).

The conda files are the official Azure ML examples' (azureml_examples/SOURCE.md)."""

from __future__ import annotations

from pathlib import Path

import pytest
from modeldeck.services.api.errors import InvalidInput
from modeldeck.services.environments import (
    EnvironmentSpec,
    environment_from_dict,
    find_python,
    is_curated_reference,
    load_environment_yaml,
    read_pip_config,
    resolve,
    spec_from_reference,
)
from modeldeck.services.environments.conda import conda_to_pip
from modeldeck.services.environments.pipconfig import PipConfig
from modeldeck.services.environments.spec import read_conda_file

EXAMPLES = Path(__file__).parent / "azureml_examples"
#: an empty pip configuration: keys and warnings do not depend on this machine's pip.conf
NO_PIP = PipConfig()


def _inline(deps: list, **extra) -> EnvironmentSpec:
    return environment_from_dict(
        {"name": "t", "conda_file": {"dependencies": deps}, **extra},
        base_dir=Path("."),
        source="test.yml",
    )


def test_model_1_conda_file_maps_to_pip_requirements() -> None:
    conda = read_conda_file(EXAMPLES / "model-1" / "conda.yaml")
    out = conda_to_pip(conda, base_dir=EXAMPLES / "model-1", source="model-1")
    assert out.python == "3.12"
    # conda pins (name=X.Y.Z) become exact pip pins; pip itself is dropped; the pip: list as is
    assert out.requirements == [
        "numpy==2.3.1",
        "scikit-learn==1.7.0",
        "scipy==1.16.0",
        "azureml-inference-server-http==1.4.1",
        "inference-schema[numpy-support]",
        "joblib",
    ]
    assert out.warnings == []


def test_unpinned_and_prefix_conda_versions() -> None:
    conda = read_conda_file(EXAMPLES / "inference-schema" / "env.yml")
    out = conda_to_pip(conda, base_dir=None, source="x")
    assert out.python == "3.10"
    # scikit-learn=1.2.2 is exact; numpy and pandas are unpinned
    assert out.requirements[:3] == ["scikit-learn==1.2.2", "numpy", "pandas"]
    out = conda_to_pip(
        {"dependencies": ["numpy=1.26", "pandas>=2.0,<3", "scipy 1.11.*", "conda-forge::joblib"]},
        base_dir=None,
        source="x",
    )
    # conda's '=' is a prefix match: numpy=1.26 is any 1.26.x
    assert out.requirements == ["numpy==1.26.*", "pandas>=2.0,<3", "scipy==1.11.*", "joblib"]


def test_a_release_built_against_numpy_1_keeps_numpy_below_2() -> None:
    """inference-schema/env.yml pins scikit-learn=1.2.2 and leaves numpy free: conda-forge
    gives it numpy 1.x; pip would take NumPy 2 and the model's init() fail with "numpy.dtype
    size changed". The mapping adds numpy<2 and says why."""
    conda = read_conda_file(EXAMPLES / "inference-schema" / "env.yml")
    out = conda_to_pip(conda, base_dir=None, source="x")
    assert "numpy<2" in out.requirements
    assert any("scikit-learn==1.2.2" in w and "numpy<2" in w for w in out.warnings)
    # a numpy version asked for is kept as asked; a release that loads under NumPy 2 adds nothing
    for deps in (["scikit-learn=1.2.2", "numpy=1.26.4"], ["scikit-learn=1.7.0", "numpy"]):
        out = conda_to_pip({"dependencies": deps}, base_dir=None, source="x")
        assert "numpy<2" not in out.requirements, deps
        assert out.warnings == []


def test_conda_double_equals_and_build_string() -> None:
    conda = read_conda_file(EXAMPLES / "deploy-with-packages" / "conda.yaml")
    out = conda_to_pip(conda, base_dir=None, source="x")
    assert "xgboost==3.0.2" in out.requirements
    out = conda_to_pip(
        {"dependencies": ["numpy=1.26.4=py311h64a7726_0", "pytorch=2.3.1"]},
        base_dir=None,
        source="x",
    )
    assert out.requirements == ["numpy==1.26.4", "torch==2.3.1"]  # pytorch is torch on PyPI
    assert len(out.warnings) == 1
    assert "py311h64a7726_0" in out.warnings[0] and "dropped" in out.warnings[0]


def test_conda_only_package_is_named_in_a_warning() -> None:
    spec = _inline(["python=3.11", "cudatoolkit=11.8", "mkl", "numpy=1.26.4"])
    resolved = resolve(spec, pip_config=NO_PIP)
    assert resolved.requirements == ("numpy==1.26.4",)
    named = [w for w in resolved.warnings if "conda-only" in w]
    assert len(named) == 2
    assert "conda_file.dependencies[1]" in named[0] and "'cudatoolkit=11.8'" in named[0]
    assert "'mkl'" in named[1]


def test_conda_only_package_a_python_env_cannot_provide_is_invalid_input() -> None:
    with pytest.raises(InvalidInput) as err:
        resolve(_inline(["python=3.11", "r-base=4.2"]), pip_config=NO_PIP)
    e = err.value
    assert e.field == "conda_file.dependencies[1]"
    assert e.value == "r-base=4.2"
    assert "conda-only" in e.rule and "R language" in e.rule
    assert e.fix and "image" in e.fix


def test_either_or_versions_are_refused() -> None:
    with pytest.raises(InvalidInput) as err:
        resolve(_inline(["numpy 1.25|1.26"]), pip_config=NO_PIP)
    assert "'|'" in err.value.rule and err.value.fix


def test_pip_list_options_are_kept_and_r_files_taken_from_the_conda_dir(tmp_path: Path) -> None:
    (tmp_path / "reqs.txt").write_text("six==1.16.0\n")
    (tmp_path / "conda.yaml").write_text(
        "dependencies:\n  - pip:\n"
        "    - --extra-index-url https://mirror.example/simple\n"
        "    - -r reqs.txt\n"
        "    - joblib\n"
    )
    (tmp_path / "env.yml").write_text("name: e\nconda_file: conda.yaml\n")
    spec = load_environment_yaml(tmp_path / "env.yml")
    resolved = resolve(spec, pip_config=NO_PIP)
    assert resolved.options == (
        "--extra-index-url https://mirror.example/simple",
        f"-r {tmp_path / 'reqs.txt'}",
    )
    assert resolved.requirements == ("joblib",)
    # the -r file's content is part of the key
    before = resolved.key
    (tmp_path / "reqs.txt").write_text("six==1.15.0\n")
    assert resolve(spec, pip_config=NO_PIP).key != before


def test_a_missing_r_file_is_invalid_input(tmp_path: Path) -> None:
    with pytest.raises(InvalidInput) as err:
        resolve(
            environment_from_dict(
                {"name": "e", "conda_file": {"dependencies": [{"pip": ["-r nope.txt"]}]}},
                base_dir=tmp_path,
                source="env.yml",
            ),
            pip_config=NO_PIP,
        )
    assert err.value.field == "conda_file.dependencies[0].pip[0]"
    assert "nope.txt" in err.value.rule


def test_environment_yaml_with_image_and_conda_file() -> None:
    spec = load_environment_yaml(EXAMPLES / "assets" / "docker-image-plus-conda.yaml")
    assert spec.name == "docker-image-plus-conda-example"
    assert spec.image == "mcr.microsoft.com/azureml/openmpi4.1.0-ubuntu20.04"
    assert spec.conda_file_path == (EXAMPLES / "assets" / "conda-yamls" / "pydata.yml").resolve()
    assert spec.conda_file is not None and spec.conda_file["name"] == "pydata-example"
    resolved = resolve(spec, pip_config=NO_PIP)
    assert "scikit-learn==0.24.2" in resolved.requirements
    assert resolved.python_wanted == "3.8"
    assert resolved.image == spec.image


def test_image_only_environment_resolves_to_no_packages_with_a_warning() -> None:
    spec = load_environment_yaml(EXAMPLES / "assets" / "docker-image.yml")
    resolved = resolve(spec, pip_config=NO_PIP)
    assert resolved.packages_known is False
    assert resolved.requirements == ()
    assert len(resolved.warnings) == 1
    assert "pytorch/pytorch:latest" in resolved.warnings[0]
    assert "conda_file" in resolved.warnings[0]


def test_unreadable_conda_file_names_field_value_rule_fix(tmp_path: Path) -> None:
    (tmp_path / "env.yml").write_text("name: e\nconda_file: missing.yaml\n")
    with pytest.raises(InvalidInput) as err:
        load_environment_yaml(tmp_path / "env.yml")
    e = err.value
    assert e.field == "conda_file"
    assert e.value == str(tmp_path / "missing.yaml")
    assert "cannot be read" in e.rule
    assert e.fix
    (tmp_path / "missing.yaml").write_text("dependencies: [python=3.11\n")
    with pytest.raises(InvalidInput) as err:
        load_environment_yaml(tmp_path / "env.yml")
    assert err.value.field == "conda_file" and "not valid YAML" in err.value.rule
    (tmp_path / "missing.yaml").write_text("dependencies: numpy\n")
    with pytest.raises(InvalidInput) as err:
        load_environment_yaml(tmp_path / "env.yml")
    assert err.value.field == "conda_file.dependencies" and "list" in err.value.rule


def test_environment_yaml_errors(tmp_path: Path) -> None:
    (tmp_path / "env.yml").write_text("name: e\ndescription: nothing to build\n")
    with pytest.raises(InvalidInput) as err:
        load_environment_yaml(tmp_path / "env.yml")
    assert "none of image, conda_file or build" in err.value.rule
    (tmp_path / "env.yml").write_text("name: e\nimage: x\ncondafile: c.yaml\n")
    with pytest.raises(InvalidInput) as err:
        load_environment_yaml(tmp_path / "env.yml")
    assert err.value.field == "condafile" and "conda_file" in (err.value.fix or "")


@pytest.mark.parametrize(
    "ref",
    [
        "azureml://registries/azureml/environments/sklearn-1.5/labels/latest",
        "azureml://registries/azureml/environments/sklearn-1.5/versions/12",
        "azureml:AzureML-sklearn-1.5@latest",
        "azureml:AzureML-sklearn-1.5:3",
    ],
)
def test_curated_references_resolve_through_the_table(ref: str) -> None:
    assert is_curated_reference(ref)
    spec = spec_from_reference(ref)
    assert spec.curated == ref
    resolved = resolve(spec, pip_config=NO_PIP)
    assert "scikit-learn~=1.5.0" in resolved.requirements
    assert resolved.python_wanted == "3.10"


def test_old_curated_name_and_registered_names() -> None:
    spec = spec_from_reference("AzureML-sklearn-1.0-ubuntu20.04-py38-cpu@latest")
    assert spec.conda_file is not None
    assert "scikit-learn~=1.0.0" in spec.conda_file["dependencies"][1]["pip"]
    assert not is_curated_reference("azureml:my-env:1")
    assert not is_curated_reference("azureml:sklearn-regression-env@latest")


def test_unknown_curated_name_is_invalid_input() -> None:
    ref = "azureml:AzureML-tensorflow-2.16-cuda12@latest"
    with pytest.raises(InvalidInput) as err:
        spec_from_reference(ref)
    e = err.value
    assert e.field == "environment" and e.value == ref
    assert "tensorflow-2.16-cuda12" in e.rule and "sklearn-1.5" in e.rule
    assert e.fix and "conda_file" in e.fix
    with pytest.raises(InvalidInput) as err:
        spec_from_reference("azureml://registries/someoneelse/environments/x/labels/latest")
    assert "someoneelse" in err.value.rule


def test_python_version_not_installed_warns_naming_both(tmp_path: Path) -> None:
    interp, warning = find_python("3.4", path=str(tmp_path), pyenv_root=tmp_path, use_uv=False)
    assert warning is not None
    assert "python=3.4" in warning and "no Python 3.4 interpreter" in warning
    assert f"using Python {interp.version}" in warning and str(interp.path) in warning
    assert "uv python install 3.4" in warning
    # through resolve(): the warning is the environment's
    resolved = resolve(
        _inline(["python=3.4", {"pip": ["six"]}]),
        pip_config=NO_PIP,
        path=str(tmp_path),
        pyenv_root=tmp_path,
    )
    assert any("no Python 3.4 interpreter" in w for w in resolved.warnings)


def test_python_version_found_through_pyenv_versions() -> None:
    pyenv = Path.home() / ".pyenv" / "versions"
    have = sorted(p.name for p in pyenv.glob("3.1[0-9].*")) if pyenv.is_dir() else []
    other = [v for v in have if not v.startswith("3.11.")]
    if not other:
        pytest.skip("no pyenv Python other than 3.11 on this machine")
    minor = ".".join(other[0].split(".")[:2])
    interp, warning = find_python(minor, path="", use_uv=False)
    assert warning is None
    assert interp.minor == minor
    assert interp.path.exists()


def test_key_is_stable_and_changes_with_content() -> None:
    a = resolve(_inline(["python=3.11", {"pip": ["six==1.16.0", "joblib"]}]), pip_config=NO_PIP)
    b = resolve(_inline(["python=3.11", {"pip": ["joblib", "six==1.16.0"]}]), pip_config=NO_PIP)
    c = resolve(_inline(["python=3.11", {"pip": ["six==1.15.0", "joblib"]}]), pip_config=NO_PIP)
    assert a.key == b.key  # order does not matter
    assert a.key != c.key
    mirror = PipConfig(index_url="https://mirror.example/simple")
    assert (
        resolve(_inline(["python=3.11", {"pip": ["six==1.16.0", "joblib"]}]), pip_config=mirror).key
        != a.key
    )


def test_pip_config_files_and_environment_map_to_uv(tmp_path: Path) -> None:
    constraints = tmp_path / "constraints.txt"
    constraints.write_text("six<2\n")
    conf = tmp_path / "pip.conf"
    conf.write_text(
        "[global]\n"
        "index-url = https://user:s3cret@mirror.example/simple\n"
        f"extra-index-url =\n    file://{tmp_path}/no-such-index\n    https://extra.example/simple\n"
        f"constraint = {constraints}\n"
        "[install]\n"
        "trusted-host = mirror.example\n"
    )
    env = {
        "HOME": str(tmp_path),
        "XDG_CONFIG_DIRS": str(tmp_path / "none"),
        "PIP_CONFIG_FILE": str(conf),
        "PIP_FIND_LINKS": f"{tmp_path} /no/such/wheels",
        "MODELDECK_OFFLINE": "1",
    }
    cfg = read_pip_config(env)
    assert cfg.index_url == "https://user:s3cret@mirror.example/simple"
    assert cfg.extra_index_urls == ["https://extra.example/simple"]
    assert cfg.find_links == [str(tmp_path)]
    assert cfg.constraints == [str(constraints)]
    assert cfg.offline is True
    # the missing local index and find-links directory are named, not passed to uv
    assert len(cfg.warnings) == 2
    assert "no-such-index" in cfg.warnings[0] and "/no/such/wheels" in cfg.warnings[1]
    uv = cfg.uv_env({})
    assert uv["UV_INDEX_URL"] == cfg.index_url
    assert uv["UV_EXTRA_INDEX_URL"] == "https://extra.example/simple"
    assert uv["UV_INDEX_STRATEGY"] == "unsafe-best-match"
    assert uv["UV_INSECURE_HOST"] == "mirror.example"
    assert uv["UV_OFFLINE"] == "1"
    assert cfg.uv_args() == ["--find-links", str(tmp_path), "--constraint", str(constraints)]
    # the token reaches uv through its environment only, never the log lines
    assert not any("s3cret" in line for line in cfg.describe())
    assert not any("s3cret" in arg for arg in cfg.uv_args())
    # a UV_* the user set wins
    assert "UV_INDEX_URL" not in cfg.uv_env({"UV_INDEX_URL": "https://mine.example/simple"})
    # constraint content is part of what decides the packages
    before = cfg.key_material()
    constraints.write_text("six<1.16\n")
    assert cfg.key_material() != before


def test_pip_config_file_devnull_reads_no_files(tmp_path: Path) -> None:
    import os

    cfg = read_pip_config({"HOME": str(tmp_path), "PIP_CONFIG_FILE": os.devnull})
    assert cfg.files == [] and cfg.index_url is None and cfg.offline is False
