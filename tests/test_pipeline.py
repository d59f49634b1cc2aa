"""The headless GLYPH-SR pipeline on tiny random diffusers models (CPU).

Checks that the custom denoising loop is the diffusers ControlNet loop (exact match with beta 0),
that ping-pong and TS fusion change only what they should, and that `upscale` runs end to end,
from files, through the CLI.
"""

from __future__ import annotations

import json

import pytest
import torch
from PIL import Image, ImageDraw

pytest.importorskip("diffusers")
pytest.importorskip("transformers")

from glyphsr_core.diffusion.models import (MissingWeightsError, controlnet_from_state_dict, controlnet_state_dict,
                                           load_base, load_controlnet, make_scheduler)
from glyphsr_core.diffusion.tiny import build_tiny_controlnet, write_tiny_models
from glyphsr_core.diffusion.sampler import GlyphSRPipeline, PipelineInputError
from glyphsr_core.method import upscale
from glyphsr_core.sampling.pingpong import PingPong
from glyphsr_core.tscontrolnet import TSBundle, init_text_from_scene, write_bundle
from glyphsr_core.types import OcrResult, TextRegion

STEPS = 3
ONLY_SCENE = PingPong(schedule="pattern", pattern="S", cfg=5.0, cfg_start=0.0)  # constant CFG, as diffusers


@pytest.fixture(scope="module")
def tiny_files(tmp_path_factory):
    root = tmp_path_factory.mktemp("tiny_models")
    return {family: write_tiny_models(root, family) for family in ("sd15", "sdxl")}


@pytest.fixture(scope="module")
def sd15(tiny_files):
    base = load_base(tiny_files["sd15"]["base"])
    scene = load_controlnet(tiny_files["sd15"]["scene_controlnet"], base.unet)
    # a text branch that differs from the scene branch (as after training)
    text = build_tiny_controlnet(base.unet, seed=99)
    return base, scene, text


def _control(seed: int = 1, size: int = 64) -> torch.Tensor:
    return torch.rand(1, 3, size, size, generator=torch.Generator().manual_seed(seed))


def _gen(seed: int = 3) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


@pytest.mark.parametrize("family", ["sd15", "sdxl"])
def test_beta_zero_matches_plain_diffusers_controlnet_pipeline(tiny_files, family):
    base = load_base(tiny_files[family]["base"])
    scene = load_controlnet(tiny_files[family]["scene_controlnet"], base.unet)
    text = build_tiny_controlnet(base.unet, seed=5)
    pipe = GlyphSRPipeline(base, scene, text, beta=0.5)
    control = _control()
    cond = pipe.encode("a shop front", "blurry")
    ours = pipe.sample(control, cond, beta=0.0, steps=STEPS, pingpong=ONLY_SCENE, generator=_gen(), output="latent")

    plain = base.controlnet_pipeline(scene)
    plain.scheduler = make_scheduler("euler", base.scheduler.config)
    plain.set_progress_bar_config(disable=True)
    reference = plain(prompt="a shop front", negative_prompt="blurry", image=control, num_inference_steps=STEPS,
                      guidance_scale=5.0, generator=_gen(), output_type="latent").images
    assert torch.equal(ours, reference)
    # and the text branch really matters when beta > 0
    fused = pipe.sample(control, cond, beta=0.5, steps=STEPS, pingpong=ONLY_SCENE, generator=_gen(), output="latent")
    assert (fused - reference).abs().max() > 1e-3


def test_denoise_matches_diffusers_img2img_controlnet_pipeline(sd15):
    from diffusers import StableDiffusionControlNetImg2ImgPipeline

    base, scene, text = sd15
    pipe = GlyphSRPipeline(base, scene, text)
    control = _control()
    steps_run = []
    ours = pipe.sample(control, pipe.encode("a sign", "blurry"), beta=0.0, steps=4, denoise=0.5, pingpong=ONLY_SCENE,
                       generator=_gen(), output="latent", callback=lambda i, n, b: steps_run.append(n))
    assert steps_run == [2, 2]  # half the schedule runs
    plain = StableDiffusionControlNetImg2ImgPipeline(
        vae=base.vae, text_encoder=base.text_encoder, tokenizer=base.tokenizer, unet=base.unet, controlnet=scene,
        scheduler=make_scheduler("euler", base.scheduler.config), safety_checker=None, feature_extractor=None,
        requires_safety_checker=False)
    plain.set_progress_bar_config(disable=True)
    reference = plain(prompt="a sign", negative_prompt="blurry", image=control, control_image=control, strength=0.5,
                      num_inference_steps=4, guidance_scale=5.0, controlnet_conditioning_scale=1.0, generator=_gen(),
                      output_type="latent").images
    torch.testing.assert_close(ours, reference, rtol=1e-5, atol=1e-5)
    with pytest.raises(PipelineInputError, match="denoise"):
        pipe.sample(control, pipe.encode("a", "b"), steps=4, denoise=0.1)


def test_pingpong_with_identical_prompts_matches_a_plain_run(sd15):
    base, scene, text = sd15
    pipe = GlyphSRPipeline(base, scene, text, beta=0.5)
    control = _control()
    same = pipe.encode("sign board", "noise")
    plain = pipe.sample(control, same, steps=4, pingpong=ONLY_SCENE, generator=_gen(), output="latent")
    alternating = PingPong(schedule="alternate", cfg=5.0, text_cfg=5.0, cfg_start=0.0)
    pingpong = pipe.sample(control, same, pipe.encode("sign board", "noise"), steps=4, pingpong=alternating,
                           generator=_gen(), output="latent")
    assert torch.equal(plain, pingpong)
    other = pipe.sample(control, same, pipe.encode('the text "OPEN"', "halos"), steps=4, pingpong=alternating,
                        generator=_gen(), output="latent")
    assert (other - plain).abs().max() > 1e-4


class Recorder:
    """What each UNet evaluation received: prompt embeddings, ControlNet residuals, and the CFG scale.

    The scale is measured, not read from the schedule: the noise prediction handed to the scheduler
    is `uncond + s * (cond - uncond)` of the UNet's two halves, solved for s by least squares.
    """

    def __init__(self, pipe):
        self.embeds, self.residuals, self.branch_outputs, self.scales = [], [], {"scene": [], "text": []}, []
        self._unet_out = None
        self.handles = [
            pipe.base.unet.register_forward_pre_hook(self._unet_in, with_kwargs=True),
            pipe.base.unet.register_forward_hook(self._unet_done),
            pipe.scene_controlnet.register_forward_hook(lambda m, a, out: self.branch_outputs["scene"].append(out)),
        ]
        if pipe.text_controlnet is not None:
            self.handles.append(pipe.text_controlnet.register_forward_hook(
                lambda m, a, out: self.branch_outputs["text"].append(out)))
        step = pipe.pipe.scheduler.step

        def recording_step(noise_pred, *args, **kwargs):
            out = self._unet_out
            if out.shape[0] == 2 * noise_pred.shape[0]:
                uncond, cond = out.chunk(2)
                direction = cond - uncond
                self.scales.append(float(((noise_pred - uncond) * direction).sum() / (direction ** 2).sum()))
            else:
                assert torch.equal(noise_pred, out)
                self.scales.append(None)  # no negative prompt evaluated
            return step(noise_pred, *args, **kwargs)

        pipe.pipe.scheduler.step = recording_step

    def _unet_in(self, module, args, kwargs):
        self.embeds.append(kwargs["encoder_hidden_states"])
        self.residuals.append(kwargs["down_block_additional_residuals"])

    def _unet_done(self, module, args, out):
        self._unet_out = out[0] if isinstance(out, tuple) else out.sample

    def close(self):
        for handle in self.handles:
            handle.remove()


def _sample_recorded(pipe, *args, **kwargs):
    pipe.pipe.scheduler = make_scheduler("euler", pipe.base.scheduler.config)
    recorder = Recorder(pipe)
    try:
        pipe.sample(*args, scheduler=None, generator=_gen(), output="latent", **kwargs)
    finally:
        recorder.close()
    return recorder


def test_schedule_sends_each_steps_prompt_pair_and_cfg_to_the_unet(sd15):
    base, scene, text = sd15
    pipe = GlyphSRPipeline(base, scene, text)
    a, b = pipe.encode("a red door", "blur"), pipe.encode('the text "EXIT"', "halos")
    pingpong = PingPong(schedule="alternate_then_text", switch_at=0.5, cfg=3.0, text_cfg=6.0, cfg_start=1.5)
    rec = _sample_recorded(pipe, _control(), a, b, steps=6, pingpong=pingpong)
    pairs = {"S": torch.cat([a.negative, a.positive]), "T": torch.cat([b.negative, b.positive])}
    used = ["".join(k for k, v in pairs.items() if torch.equal(e, v)) for e in rec.embeds]
    assert "".join(used) == "STSTTT"
    # CFG ramps linearly from 1.5 at step 0 to each pair's own scale at step 5
    # (scene: 1.5 + 1.5 * i / 5, text: 1.5 + 4.5 * i / 5)
    assert rec.scales == pytest.approx([1.5, 2.4, 2.1, 4.2, 5.1, 6.0], rel=1e-3)


def test_cfg_below_one_still_uses_the_negative_prompt_like_comfyui(sd15):
    """ComfyUI skips the negative prompt only at exactly cfg 1; 0.5 still mixes it in."""
    base, scene, text = sd15
    pipe = GlyphSRPipeline(base, scene, text)
    cond = pipe.encode("sign", "blur")
    rec = _sample_recorded(pipe, _control(), cond, steps=3, pingpong=PingPong(schedule="alternate", cfg=0.5,
                                                                              text_cfg=1.0, cfg_start=0.0))
    assert rec.scales[0] == pytest.approx(0.5, rel=1e-3) and rec.scales[2] == pytest.approx(0.5, rel=1e-3)
    assert rec.scales[1] is None and torch.equal(rec.embeds[1], cond.positive)  # cfg exactly 1: positive only


@pytest.mark.parametrize("family", ["sd15", "sdxl"])
def test_half_precision_base_with_a_float32_text_branch(tiny_files, family):
    """Validation during mixed-precision training: base and scene in bf16, the trained branch in fp32."""
    base = load_base(tiny_files[family]["base"])
    scene = load_controlnet(tiny_files[family]["scene_controlnet"], base.unet)
    text = build_tiny_controlnet(base.unet, seed=7)
    full = GlyphSRPipeline(base, scene, text, beta=0.5)
    cond = full.encode("sign", "")
    reference = full.sample(_control(), cond, steps=2, pingpong=ONLY_SCENE, generator=_gen(), output="latent")
    base.to(dtype=torch.bfloat16)
    scene.to(torch.bfloat16)
    mixed = GlyphSRPipeline(base, scene, text, beta=0.5)
    latents = mixed.sample(_control(), mixed.encode("sign", ""), steps=2, pingpong=ONLY_SCENE, generator=_gen(),
                           output="latent")
    assert latents.dtype == torch.bfloat16 and torch.isfinite(latents.float()).all()
    relative_error = (latents.float() - reference.float()).norm() / reference.float().norm()
    assert relative_error < 0.05  # bf16 rounding, not a different computation


def test_text_copy_of_scene_gives_the_scene_result_for_any_beta(sd15):
    base, scene, _ = sd15
    copy = controlnet_from_state_dict(init_text_from_scene(controlnet_state_dict(scene)), base.unet)
    pipe = GlyphSRPipeline(base, scene, copy)
    cond = pipe.encode("x", "y")
    scene_only = pipe.sample(_control(), cond, beta=0.0, steps=2, pingpong=ONLY_SCENE, generator=_gen(), output="latent")
    for beta in (0.3, 1.0):
        fused = pipe.sample(_control(), cond, beta=beta, steps=2, pingpong=ONLY_SCENE, generator=_gen(), output="latent")
        torch.testing.assert_close(fused, scene_only, rtol=1e-4, atol=1e-4)


def test_beta_map_gives_the_text_residual_inside_the_mask_and_the_scene_residual_outside(sd15):
    from glyphsr_core.sampling.fusion import beta_map_from_mask

    base, scene, text = sd15
    pipe = GlyphSRPipeline(base, scene, text)
    cond = pipe.encode("x", "y")
    mask = torch.zeros(1, 64, 64)
    mask[..., :32] = 1.0  # the left half of the image is text
    rec = _sample_recorded(pipe, _control(), cond, steps=2, pingpong=ONLY_SCENE,
                           beta_map=beta_map_from_mask(mask, beta_text=1.0, beta_scene=0.0))
    checked = 0
    for step, fused in enumerate(rec.residuals):
        scene_down, text_down = rec.branch_outputs["scene"][step][0], rec.branch_outputs["text"][step][0]
        for r, s_res, t_res in zip(fused, scene_down, text_down):
            half = r.shape[-1] // 2
            if r.shape[-1] % 2:
                continue  # an odd width has a column that straddles the mask edge
            assert torch.equal(r[..., :half], t_res[..., :half]) and torch.equal(r[..., half:], s_res[..., half:])
            assert not torch.equal(t_res[..., :half], s_res[..., :half])  # the branches really differ there
            checked += 1
    assert checked >= 4


def test_zero_initialised_glyph_channel_ignores_the_glyph_until_trained(sd15):
    base, scene, _ = sd15
    text = controlnet_from_state_dict(init_text_from_scene(controlnet_state_dict(scene), glyph_channel=True), base.unet)
    assert text.config.conditioning_channels == 4
    pipe = GlyphSRPipeline(base, scene, text, text_hint="lq+glyph", beta=1.0)
    cond = pipe.encode("x", "y")
    kwargs = dict(steps=2, pingpong=ONLY_SCENE, output="latent")
    black = pipe.sample(_control(), cond, glyph=torch.zeros(1, 1, 64, 64), generator=_gen(), **kwargs)
    white = pipe.sample(_control(), cond, glyph=torch.ones(1, 1, 64, 64), generator=_gen(), **kwargs)
    assert torch.equal(black, white)
    with torch.no_grad():
        text.controlnet_cond_embedding.conv_in.weight[:, 3:] += 0.5
    assert not torch.equal(black, pipe.sample(_control(), cond, glyph=torch.ones(1, 1, 64, 64), generator=_gen(),
                                              **kwargs))
    with pytest.raises(PipelineInputError, match="glyph"):
        pipe.sample(_control(), cond, **kwargs)


def test_bad_inputs_are_named(sd15):
    base, scene, text = sd15
    pipe = GlyphSRPipeline(base, scene)
    cond = pipe.encode("x", "y")
    with pytest.raises(PipelineInputError, match="multiple of 8"):
        pipe.sample(torch.rand(1, 3, 60, 64), cond, steps=1)
    with pytest.raises(PipelineInputError, match="text branch"):
        pipe.sample(_control(), cond, beta=0.5, steps=1)
    with pytest.raises(PipelineInputError, match="text_hint"):
        GlyphSRPipeline(base, scene, text, text_hint="lq+glyph")


def _sign(size=(24, 16)) -> Image.Image:
    image = Image.new("RGB", size, (30, 60, 200))
    ImageDraw.Draw(image).rectangle((4, 4, 19, 11), fill=(250, 250, 250))
    return image


@pytest.fixture(scope="module")
def bundle_file(tiny_files, sd15, tmp_path_factory):
    base, scene, _ = sd15
    text_sd = init_text_from_scene(controlnet_state_dict(scene), glyph_channel=True)
    text_sd["controlnet_cond_embedding.conv_in.weight"][:, 3:] = 0.1
    path = tmp_path_factory.mktemp("bundle") / "ts_text.safetensors"
    return write_bundle(path, TSBundle(scene=None, text=text_sd, beta=0.6, text_hint="lq+glyph", base="other"))


def test_upscale_end_to_end_from_files(tiny_files, bundle_file):
    files = tiny_files["sd15"]
    pipe = GlyphSRPipeline.from_files(files["base"], files["scene_controlnet"], bundle_file, device="cpu")
    assert pipe.text_hint == "lq+glyph" and pipe.beta == pytest.approx(0.6)
    words = OcrResult(24, 16, (TextRegion("OPEN", 0.9, ((0.1, 0.2), (0.8, 0.2), (0.8, 0.7), (0.1, 0.7))),))
    result = upscale(pipe, _sign(), scale=4, text=words, caption="a blue sign", steps=3, seed=1, beta_scene=0.2,
                          mask_dilation=2)
    assert result.image.size == (96, 64) == result.size
    assert '"OPEN"' in result.prompts.text_positive and "a blue sign" in result.prompts.scene_positive
    assert result.schedule == "STS"  # alternate_then_text: 0.9 of 3 steps leaves no text-only step
    again = upscale(pipe, _sign(), scale=4, text=words, caption="a blue sign", steps=3, seed=1, beta_scene=0.2,
                         mask_dilation=2)
    assert list(again.image.getdata()) == list(result.image.getdata())


def test_upscale_with_ocr_and_odd_scale(tiny_files):
    pytest.importorskip("rapidocr")
    files = tiny_files["sd15"]
    pipe = GlyphSRPipeline.from_files(files["base"], files["scene_controlnet"], device="cpu")
    result = upscale(pipe, _sign((30, 20)), scale=2.5, steps=2, color_fix="adain")
    assert result.image.size == (75, 50)  # worked at 72x48 (multiples of 8), resized to the exact target
    assert result.info["work_size"] == (72, 48)
    assert isinstance(result.ocr, OcrResult)


def test_upscale_cli_writes_image_and_report(tiny_files, bundle_file, tmp_path):
    from glyphsr_core.cli import main

    files = tiny_files["sd15"]
    _sign().save(tmp_path / "in.png")
    out = tmp_path / "out" / "up.png"
    code = main(["upscale", str(tmp_path / "in.png"), "-o", str(out), "--scale", "2", "--base", str(files["base"]),
                 "--scene-controlnet", str(files["scene_controlnet"]), "--ts-controlnet", str(bundle_file),
                 "--steps", "2", "--cfg", "3", "--seed", "5", "--text", "OPEN @ 0.1,0.2,0.8,0.7", "--device", "cpu"])
    assert code == 0
    assert Image.open(out).size == (48, 32)
    report = json.loads((tmp_path / "out" / "up_report.json").read_text())
    assert report["ocr"]["regions"][0]["text"] == "OPEN"
    assert report["schedule"] == "ST" and report["prompts"]["text_positive"].startswith('the text "OPEN"')


def test_missing_weights_say_what_to_provide(tiny_files, tmp_path, capsys):
    from glyphsr_core.cli import main

    files = tiny_files["sd15"]
    _sign().save(tmp_path / "in.png")
    missing = tmp_path / "nope.safetensors"
    code = main(["upscale", str(tmp_path / "in.png"), "-o", str(tmp_path / "o.png"), "--base", str(files["base"]),
                 "--scene-controlnet", str(missing)])
    assert code == 2
    err = capsys.readouterr().err
    assert "scene ControlNet not found" in err and str(missing) in err
    with pytest.raises(MissingWeightsError, match="--base-config"):
        load_base(files["scene_controlnet"])  # a single file without its config folder
    with pytest.raises(MissingWeightsError, match="model_index.json"):
        load_base(tmp_path)


def test_upscale_captions_the_lq_image_with_the_vlm(tiny_files, tmp_path):
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from tiny_vlms import build_tiny_llava

    from glyphsr_core.vlm import load_captioner

    captioner = load_captioner(build_tiny_llava(tmp_path / "llava"))
    calls = []

    class Recording:
        def caption(self, images):
            calls.append([im.size for im in images])
            return captioner.caption(images, max_new_tokens=6, seed=0)

    files = tiny_files["sd15"]
    pipe = GlyphSRPipeline.from_files(files["base"], files["scene_controlnet"], device="cpu")
    words = OcrResult(24, 16, ())
    result = upscale(pipe, _sign(), scale=2, text=words, captioner=Recording(), steps=1)
    assert calls == [[(24, 16)]]  # the LQ image, once
    assert result.caption == captioner.caption([_sign()], max_new_tokens=6, seed=0)[0]
    assert result.prompts.scene_positive.startswith(result.caption)
    explicit = upscale(pipe, _sign(), scale=2, text=words, captioner=Recording(), caption="given", steps=1)
    assert len(calls) == 1 and explicit.caption == "given"  # a given caption skips the VLM


def test_upscale_cli_captions_with_the_vlm_folder(tiny_files, tmp_path):
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from tiny_vlms import build_tiny_llava

    from glyphsr_core.cli import main
    from glyphsr_core.vlm import load_captioner

    folder = build_tiny_llava(tmp_path / "llava")
    _sign().save(tmp_path / "in.png")
    files = tiny_files["sd15"]
    code = main(["upscale", str(tmp_path / "in.png"), "-o", str(tmp_path / "out.png"), "--base", str(files["base"]),
                 "--scene-controlnet", str(files["scene_controlnet"]), "--vlm", str(folder), "--scale", "2",
                 "--steps", "1", "--device", "cpu"])
    assert code == 0
    report = json.loads((tmp_path / "out_report.json").read_text(encoding="utf-8"))
    expected = load_captioner(folder).caption([_sign()])[0]
    assert report["caption"] == expected and report["prompts"]["scene_positive"].startswith(expected)


def test_a_full_bundle_brings_its_own_scene_branch(tiny_files, sd15, tmp_path):
    from safetensors.torch import load_file

    files = tiny_files["sd15"]
    scene_sd = load_file(str(files["scene_controlnet"]))
    text_sd = {k: v + 0.01 for k, v in scene_sd.items()}
    full = write_bundle(tmp_path / "full.safetensors", TSBundle(scene=scene_sd, text=text_sd, beta=0.3, base="other"))
    from_bundle = GlyphSRPipeline.from_files(files["base"], None, full, device="cpu")
    from_files = GlyphSRPipeline.from_files(files["base"], files["scene_controlnet"], full, device="cpu")
    kwargs = dict(steps=2, pingpong=ONLY_SCENE, output="latent")
    a = from_bundle.sample(_control(), from_bundle.encode("x", "y"), generator=_gen(), **kwargs)
    b = from_files.sample(_control(), from_files.encode("x", "y"), generator=_gen(), **kwargs)
    assert torch.equal(a, b)
    text_only = write_bundle(tmp_path / "text.safetensors", TSBundle(scene=None, text=text_sd, base="other"))
    with pytest.raises(MissingWeightsError, match="scene-controlnet"):
        GlyphSRPipeline.from_files(files["base"], None, text_only)


# ------------------------------------------------------------------ shared-weights text branch

def test_shared_text_branch_runs_the_scene_weights_on_the_restored_image(sd15):
    base, scene, _ = sd15
    shared = GlyphSRPipeline(base, scene, scene, text_hint="restored", beta=0.5)
    plain = GlyphSRPipeline(base, scene)
    cond = plain.encode("x", "y")
    kwargs = dict(steps=2, pingpong=ONLY_SCENE, output="latent")
    lq, restored = _control(1), _control(2)
    on_lq = plain.sample(lq, cond, generator=_gen(), **kwargs)
    on_restored = plain.sample(restored, cond, generator=_gen(), **kwargs)
    assert torch.equal(shared.sample(lq, cond, restored=restored, beta=0.0, generator=_gen(), **kwargs), on_lq)
    assert torch.equal(shared.sample(lq, cond, restored=restored, beta=1.0, generator=_gen(), **kwargs), on_restored)
    half = shared.sample(lq, cond, restored=restored, beta=0.5, generator=_gen(), **kwargs)
    assert not torch.equal(half, on_lq) and not torch.equal(half, on_restored)
    # the same hint would make the two branches one: the restored image is what makes it useful
    torch.testing.assert_close(shared.sample(lq, cond, restored=lq, beta=0.5, generator=_gen(), **kwargs), on_lq)
    with pytest.raises(PipelineInputError, match="sees the restored image: pass restored"):
        shared.sample(lq, cond, beta=0.5, **kwargs)
    with pytest.raises(PipelineInputError, match="must see the restored image"):
        GlyphSRPipeline(base, scene, scene, text_hint="lq")


def test_upscale_cli_with_the_shared_text_branch(tiny_files, tmp_path, capsys):
    """R is Text Restore's result (here a bicubic-initialised restorer) or the --restored file."""
    from glyphsr_core.cli import main
    from glyphsr_core.restore import save_restorer
    from glyphsr_core.restore.compact import CompactSR, init_as_bicubic

    files = tiny_files["sd15"]
    _sign().save(tmp_path / "in.png")
    _sign((96, 64)).save(tmp_path / "restored.png")
    net = CompactSR(num_feat=48, num_conv=1, scale=4)
    init_as_bicubic(net)
    restorer = save_restorer(net, tmp_path / "restorer.safetensors")
    out = tmp_path / "up.png"
    args = ["upscale", str(tmp_path / "in.png"), "-o", str(out), "--scale", "2", "--base", str(files["base"]),
            "--scene-controlnet", str(files["scene_controlnet"]), "--shared-text-branch", "--steps", "2",
            "--cfg", "3", "--text", "OPEN @ 0.1,0.2,0.8,0.7", "--device", "cpu"]
    assert main(args + ["--restorer", str(tmp_path / "missing.safetensors")]) == 2
    assert "missing.safetensors" in capsys.readouterr().err
    assert main(args + ["--restorer", str(restorer)]) == 0
    assert Image.open(out).size == (48, 32)
    assert main(args + ["--restored", str(tmp_path / "restored.png")]) == 0
    settings = json.loads((tmp_path / "up_report.json").read_text())["settings"]
    assert settings["shared_text_branch"] is True and settings["restored"].endswith("restored.png")
