"""experiments/few_step.py: teacher and student side by side, DiT passes counted, ratios and spectrograms written."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import soundfile as sf

from conftest import SR, white_noise

import few_step


def run_folder(root: Path, config_path: str, weights: str, **saga_sr: object) -> Path:
    root.mkdir(parents=True)
    config = json.loads(Path(config_path).read_text())
    config["saga_sr"].update(saga_sr)
    (root / "model.json").write_text(json.dumps(config))
    shutil.copy(weights, root / "model.safetensors")
    return root


def test_teacher_and_student_are_scored_and_their_passes_counted(demo_model_files, tmp_path):
    teacher = run_folder(tmp_path / "teacher", *demo_model_files)
    student = run_folder(tmp_path / "student", *demo_model_files, sampler="pingpong", schedule="logsnr",
                         steps=2, guidance_acoustic=1.0, guidance_text=1.0)
    for category, seed in (("music", 1), ("speech", 2)):
        (tmp_path / "refs" / category).mkdir(parents=True)
        sf.write(tmp_path / "refs" / category / "a.wav", white_noise(0.2, seed=seed).T.numpy(), SR)
    few_step.main(["--teacher", str(teacher), "--student", str(student), "--student-labels", "ARC",
                   "--references", str(tmp_path / "refs"), "--cutoffs", "4000", "--teacher-steps", "3",
                   "--student-steps", "1", "2", "--training-free", "dpmpp:logsnr:2:unguided",
                   "--out", str(tmp_path / "out")])
    timing = json.loads((tmp_path / "out" / "results.json").read_text())["timing"]
    # counted by the hook on the DiT: eq. 4 is 3 passes a step, the student and the unguided teacher 1
    assert timing["teacher euler 3"]["nfe_per_window"] == 9
    assert timing["ARC pingpong 1"]["nfe_per_window"] == 1 and timing["ARC pingpong 2"]["nfe_per_window"] == 2
    assert timing["teacher dpmpp/logsnr 2 unguided"]["nfe_per_window"] == 2
    text = (tmp_path / "out" / "results.md").read_text()
    assert "| music | 4 kHz | ARC pingpong 2 | 2 |" in text and "ARC pingpong 1: NFE x9.0 fewer" in text
    assert (tmp_path / "out" / "spectrograms" / "speech_4000.png").stat().st_size > 0
    rows = (tmp_path / "out" / "lsd_per_file.csv").read_text().splitlines()
    assert len(rows) == 1 + 2 * (2 + 4)  # header + 2 files x (unprocessed, sinc, teacher, 2 students, unguided)
