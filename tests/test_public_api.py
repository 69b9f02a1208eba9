"""The package's public face: a torch-free import and CLI help, registration on first use, the API."""
from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest


def _run(code: str) -> str:
    """``code`` in a fresh interpreter (this one has torch loaded already); its stdout."""
    done = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout


@pytest.mark.parametrize("argv", [["--help"]] + [[command, "--help"] for command in
                                  ("export", "upsample", "caption", "pre-encode", "evaluate", "table1", "gui")])
def test_cli_help_imports_no_torch(argv):
    out = _run(f"""
        import sys
        from saga_sr_plugin.interface.cli import main
        try:
            main({argv!r})
        except SystemExit as stop:
            assert stop.code == 0, stop.code
        heavy = sorted(m for m in ("torch", "stable_audio_tools", "transformers", "numpy") if m in sys.modules)
        print("HEAVY", heavy)
    """)
    assert "usage: saga-sr" in out
    assert "HEAVY []" in out, out[-500:]


def test_train_entry_help_imports_no_torch():
    out = _run("""
        import sys
        from saga_sr_plugin.interface.train import parse_args
        try:
            parse_args(["--help"])
        except SystemExit:
            pass
        print("HEAVY", sorted(m for m in ("torch", "stable_audio_tools") if m in sys.modules))
    """)
    assert "--model-config" in out and "HEAVY []" in out


def test_importing_stable_audio_tools_after_the_package_registers_the_plugin():
    out = _run("""
        import saga_sr_plugin, sys
        assert "stable_audio_tools" not in sys.modules
        from stable_audio_tools.models.factory import create_model_from_config
        from saga_sr_plugin.models.registry import is_registered
        print("REGISTERED", is_registered())
    """)
    assert "REGISTERED True" in out
    assert "flash_attn" not in out, "the official transformer's known notice is dropped, as before"


def test_importing_the_package_after_stable_audio_tools_registers_at_once():
    out = _run("""
        import stable_audio_tools.models.factory
        import saga_sr_plugin
        from saga_sr_plugin.models.registry import is_registered
        print("REGISTERED", is_registered())
    """)
    assert "REGISTERED True" in out


def test_the_public_names_resolve_to_their_definitions():
    import saga_sr_plugin
    from saga_sr_plugin.evaluation.protocol import evaluate
    from saga_sr_plugin.inference.upsampler import Upsampler

    assert saga_sr_plugin.Upsampler is Upsampler and saga_sr_plugin.evaluate is evaluate
    for name in saga_sr_plugin.__all__:
        assert getattr(saga_sr_plugin, name) is not None
    with pytest.raises(AttributeError, match="no attribute 'Upsampler2'"):
        saga_sr_plugin.Upsampler2


def test_five_lines_load_upsample_a_file_and_score_it(demo_model_files, tmp_path):
    from conftest import SR, lowpassed, white_noise

    from saga_sr_plugin import Upsampler, read_audio, visqol, write_audio

    reference = white_noise(1.0, seed=1)
    write_audio(tmp_path / "in.wav", lowpassed(reference, 4000), SR)
    upsampler = Upsampler.load(*demo_model_files, device="cpu")
    result = upsampler.upsample_file(tmp_path / "in.wav", tmp_path / "out.wav", settings=upsampler.settings(steps=2))
    written, rate = read_audio(tmp_path / "out.wav")
    assert rate == 44100 and written.shape == result.audio.shape
    assert 1.0 <= visqol(result.audio, reference) <= 5.0
