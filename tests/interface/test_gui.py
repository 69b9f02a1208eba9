"""saga-sr gui: the handlers as functions, the served app driven by gradio_client, and a real browser."""
from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from saga_sr_plugin.inference.upsampler import Upsampler

gr = pytest.importorskip("gradio")
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"


@pytest.fixture(scope="module")
def page(demo_model_files, tmp_path_factory):
    from saga_sr_plugin.interface.gui import Page, resolve_pretrained

    # SAGA_SR_GUI_MODEL=runs/saga_sr (a trained export) for the README's screenshot; else random demo weights
    files = resolve_pretrained(os.environ["SAGA_SR_GUI_MODEL"]) if "SAGA_SR_GUI_MODEL" in os.environ \
        else demo_model_files
    return Page(Upsampler.load(*files, device="cpu"), tmp_path_factory.mktemp("gui"), max_seconds=5.0)


def wav(path: Path, rate: int = 16000, seconds: float = 1.0, channels: int = 1, amp: float = 0.3) -> str:
    data = amp * np.random.default_rng(0).standard_normal((int(rate * seconds), channels)).astype(np.float32)
    sf.write(path, data, rate)
    return str(path)


# steps, s_a, s_t, f_h, seed, LFR, sampler, schedule
SETTINGS = (2, 1.4, 1.2, 0.9, 0, True, "euler", "linear_quadratic")


def test_upsample_handler_gives_44k1_of_the_same_duration_a_figure_and_progress(page, tmp_path):
    from saga_sr_plugin.interface.gui import upsample_handler

    seen = []
    heard, out, png, summary, caption = upsample_handler(
        page, wav(tmp_path / "in.wav"), "typed", "a tone", *SETTINGS, "flac",
        progress=lambda fraction, desc="": seen.append(fraction))
    audio, rate = sf.read(out, always_2d=True)
    assert out.endswith(".flac") and rate == 44100 and audio.shape == (44100, 1)
    assert Path(png).stat().st_size > 10_000 and "cutoff" in summary and caption == "a tone"
    windows = page.upsampler.window_count(44100, page.defaults)
    assert windows > 1 and seen == sorted(seen) and seen[-1] == 1.0 and len(seen) == 2 * windows, seen


@pytest.mark.parametrize("make, message", [
    (lambda p: p.write_bytes(b"not audio at all") and str(p), "cannot decode audio"),
    (lambda p: wav(p, amp=0.0), "silent"),
    (lambda p: wav(p, channels=3), "3 channels"),
    (lambda p: wav(p, seconds=6.0), "longer than this page accepts (5 s"),
])
def test_bad_input_is_a_one_line_message_in_the_page(page, tmp_path, make, message):
    from saga_sr_plugin.interface.gui import upsample_handler

    with pytest.raises(gr.Error) as err:
        upsample_handler(page, make(tmp_path / "bad.wav"), "none", "", *SETTINGS, "wav")
    assert message in str(err.value) and "\n" not in str(err.value) and str(tmp_path) not in str(err.value)


def test_the_f_h_box_takes_auto_and_names_a_typo(page, tmp_path):
    from saga_sr_plugin.interface.gui import upsample_handler

    steps, s_a, s_t, _, *rest = SETTINGS
    *_, summary, _ = upsample_handler(page, wav(tmp_path / "in.wav"), "none", "", steps, s_a, s_t, "auto", *rest, "wav")
    assert "(auto, from the input)" in summary
    with pytest.raises(gr.Error, match="target_rolloff 'autp': a number in \\[0, 1\\] or 'auto'"):
        upsample_handler(page, wav(tmp_path / "in.wav"), "none", "", steps, s_a, s_t, "autp", *rest, "wav")


def test_cancel_stops_the_sampler_at_its_next_step(page, tmp_path):
    from saga_sr_plugin.interface.gui import upsample_handler

    with pytest.raises(gr.Error, match="cancelled"):
        upsample_handler(page, wav(tmp_path / "in.wav"), "none", "", 50, 1.4, 1.2, 0.9, 0, True, "euler",
                         "linear_quadratic", "wav",
                         progress=lambda fraction, desc="": page.cancel.set())


def test_compare_handler_scores_input_and_output_against_the_reference(page, tmp_path):
    from saga_sr_plugin.interface.gui import compare_handler

    low, out, ref, png, table = compare_handler(page, wav(tmp_path / "ref.wav", rate=44100, channels=2, seconds=1.5), 4000, "",
                                                *SETTINGS)
    lengths = {sf.info(p).frames for p in (low, out, ref)}
    assert lengths == {66150} and Path(png).is_file()
    rows = {line.split("|")[1].strip(): line.split("|")[2:6] for line in table.splitlines()
            if line.startswith(("| input", "| SAGA-SR"))}
    assert list(rows) == ["input", "SAGA-SR raw decode", "SAGA-SR"], "ViSQOL and LSD, raw beside processed (issue 25)"
    assert table.splitlines()[0].split("|")[2].strip() == "ViSQOL"
    for name, cells in rows.items():
        assert 1.0 <= float(cells[0]) <= 5.0 and all(float(c) > 0 for c in cells[1:]), (name, cells)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def served(page):
    from saga_sr_plugin.interface.gui import build_app

    app = build_app(page)
    port = free_port()
    app.launch(server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, share=False, quiet=True)
    yield f"http://127.0.0.1:{port}/"
    app.close()


def test_the_served_app_upsamples_through_gradio_client_with_progress(served, tmp_path):
    from gradio_client import Client, handle_file

    client = Client(served, verbose=False)
    job = client.submit(handle_file(wav(tmp_path / "in16k.wav", seconds=1.5)), "none", "", 20, 1.0, 1.0, 0.9, 0,
                        True, "dpmpp", "linear", "wav", api_name="/upsample")
    progress = []
    deadline = time.time() + 300
    while not job.done():
        assert time.time() < deadline, "the page did not finish a 1.5 s upsampling in 5 minutes"
        status = job.status()
        if status.progress_data:
            progress += [unit.progress for unit in status.progress_data if unit.progress is not None]
        time.sleep(0.02)
    result = job.result(timeout=300)
    audio, rate = sf.read(result[1], always_2d=True)
    assert rate == 44100 and abs(audio.shape[0] - int(1.5 * 44100)) <= 1
    assert progress and 0 < min(progress) <= max(progress) <= 1, "the sampler's progress reached the client"
    (tmp_path / "bad.wav").write_bytes(b"RIFF nonsense")
    with pytest.raises(Exception, match="cannot decode audio"):
        client.predict(handle_file(str(tmp_path / "bad.wav")), "none", "", *SETTINGS, "wav", api_name="/upsample")


def test_uploaded_only_refuses_a_path_outside_gradios_upload_folder(tmp_path, monkeypatch):
    from saga_sr_plugin.interface.gui import uploaded_only

    monkeypatch.setenv("GRADIO_TEMP_DIR", str(tmp_path / "uploads"))
    inside = tmp_path / "uploads" / "abc" / "take.wav"
    inside.parent.mkdir(parents=True)
    assert uploaded_only(wav(inside)) == str(inside)
    (tmp_path / "uploads" / "escape").symlink_to(tmp_path)   # a link out of the folder is outside too
    for outside in (wav(tmp_path / "secret.wav"), str(tmp_path / "uploads" / ".." / "secret.wav"),
                    str(tmp_path / "uploads" / "escape" / "secret.wav")):
        with pytest.raises(gr.Error, match="refused 'secret.wav': this page reads only files uploaded through it"):
            uploaded_only(outside)


@pytest.mark.parametrize("endpoint", ["/upsample", "/compare"])
def test_a_request_naming_a_server_file_is_refused_and_nothing_is_copied(served, tmp_path, monkeypatch, endpoint):
    """The attack of issue 29, from a client that does not upload: a file entry naming a path on the server."""
    from gradio.utils import get_upload_folder
    from gradio_client import Client
    from gradio_client.client import Endpoint

    tag = uuid.uuid4().hex
    secret = Path(wav(tmp_path / f"secret_{tag}.wav", rate=44100, channels=2))
    notes = tmp_path / f"notes_{tag}.json"
    notes.write_text('{"token": "s3cret"}')
    # gradio_client reads and uploads any local file named in an entry (so on one machine the "attack" uploads
    # the client's own copy); a remote client sends the bare path, which is what this simulates
    monkeypatch.setattr(Endpoint, "_upload_file", lambda self, f, data_index: f)
    client = Client(served, verbose=False)
    rest = ("none", "", *SETTINGS, "wav") if endpoint == "/upsample" else (4000, "", *SETTINGS)
    for target in (secret, notes):
        with pytest.raises(Exception) as err:
            client.predict({"path": str(target), "meta": {"_type": "gradio.FileData"}}, *rest, api_name=endpoint)
        assert "s3cret" not in str(err.value)
    copies = [p for p in Path(get_upload_folder()).rglob(f"*{tag}*")]
    assert copies == [], f"the server copied files it never received: {copies}"


def test_sigterm_stops_the_page_and_removes_its_folder_and_uploads(demo_model_files, tmp_path):
    """``saga-sr gui`` stopped the way services are (SIGTERM) leaves no temporary folder or upload behind."""
    from gradio_client import Client, handle_file

    tmp = tmp_path / "tmp"
    tmp.mkdir()
    port = free_port()
    env = {**os.environ, "TMPDIR": str(tmp), "GRADIO_ANALYTICS_ENABLED": "False"}
    env.pop("GRADIO_TEMP_DIR", None)
    server = subprocess.Popen([sys.executable, "-m", "saga_sr_plugin.interface.cli", "gui", "--model-config",
                               demo_model_files[0], "--weights", demo_model_files[1], "--port", str(port),
                               "--device", "cpu"], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.time() + 240
        while True:
            try:
                client = Client(f"http://127.0.0.1:{port}/", verbose=False)
                break
            except Exception:
                assert server.poll() is None and time.time() < deadline, server.stdout.read() if server.poll() else ""
                time.sleep(1)
        client.predict(handle_file(wav(tmp_path / "in.wav")), "none", "", *SETTINGS, "wav", api_name="/upsample")
        assert [p.name for p in tmp.iterdir()] and any(tmp.rglob("in.wav")), "the upload lands under TMPDIR"
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=60)
    finally:
        if server.poll() is None:
            server.kill()
    left = sorted(str(p.relative_to(tmp)) for p in tmp.rglob("*") if "saga-sr-gui" in str(p) or "gradio" in str(p)
                  or p.name == "in.wav")
    assert left == [], f"left behind after SIGTERM: {left[:5]}"


# .ci/run installs Chromium and sets SAGA_SR_REQUIRE_BROWSER=1: there a missing browser fails, never skips
@pytest.mark.skipif(not Path(CHROMIUM).exists() and not os.environ.get("SAGA_SR_REQUIRE_BROWSER"),
                    reason="needs Debian's chromium (apt-get install chromium)")
def test_a_real_browser_uploads_presses_the_button_and_sees_player_and_spectrogram(served, tmp_path):
    from playwright import sync_api  # a dev dependency: pip install -e '.[dev]'

    shot = Path(os.environ.get("SAGA_SR_GUI_SCREENSHOT", tmp_path / "gui.png"))
    flags = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
             "--disable-component-update", "--disable-sync"]
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=flags)
        try:
            view = browser.new_page(viewport={"width": 1400, "height": 1300})
            view.goto(served)
            upload = os.environ.get("SAGA_SR_GUI_INPUT") or wav(tmp_path / "browser.wav", rate=22050)
            view.locator("input[type=file]").first.set_input_files(upload)
            view.locator("#upsample-button").click()
            view.locator("#spectrograms img").wait_for(state="visible", timeout=240_000)
            assert view.locator("#output-audio audio, #output-audio .waveform-container, #output-audio [data-testid]"
                                ).count() > 0
            view.screenshot(path=str(shot), full_page=True)
        finally:
            browser.close()
    assert shot.stat().st_size > 20_000


def test_pretrained_name_is_an_export_folder_or_a_one_line_error(demo_model_files, tmp_path, monkeypatch):
    from saga_sr_plugin.configs import ConfigError
    from saga_sr_plugin.interface.gui import resolve_pretrained

    folder = tmp_path / "export"
    folder.mkdir()
    shutil.copy(demo_model_files[0], folder / "model.json")
    shutil.copy(demo_model_files[1], folder / "model.safetensors")
    assert resolve_pretrained(str(folder)) == (str(folder / "model.json"), str(folder / "model.safetensors"))
    (folder / "model.safetensors").unlink()
    with pytest.raises(ConfigError, match="needs model.json .* and model.safetensors"):
        resolve_pretrained(str(folder))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ConfigError, match="neither a folder nor a downloadable repository"):
        resolve_pretrained("someone/no-such-model")
