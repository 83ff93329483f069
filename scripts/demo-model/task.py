#!/usr/bin/env python3
"""The demo model's synthetic biomedical VQA task: radiograph-, CT-, histology- and microscopy-like
images with closed (yes/no) and short open questions in the style of VQA-RAD/SLAKE.

Deterministic: the same seed gives the same images and questions (Python's `random`, Pillow drawing,
no numpy). Images are 320 x 256 so that CLIP's preprocessing (shortest edge to 224 with bicubic, then a
centre crop of 224) both resizes and crops: everything a question is about lies inside the crop
(x in [40, 280) of the original), and "edge markers" -- blobs that look like the answer-bearing ones --
lie in the margins the crop removes, so a pipeline that skips the crop sees different counts/sides.

Radiographs follow the radiological convention: the patient's right lung is on the image's left.

Usage:
  python3 scripts/demo-model/task.py OUT_DIR --split test --images 32 --seed 7
writes OUT_DIR/test.json (LLaVA-Med eval format, ids from 1) and OUT_DIR/images/test-NNN.png.
"""
import argparse
import json
import os
import random

from PIL import Image, ImageDraw

W, H = 320, 256
# The part of the original image that survives resize-to-224 + centre crop: x in [32, 288). Keep the
# content well inside it and the edge markers well outside it.
CROP_X0, CROP_X1 = 32, 288
COUNT_WORDS = ['none', 'one', 'two', 'three']
KINDS = ['xray', 'ct', 'histology', 'microscopy']


def _ellipse(d, cx, cy, rx, ry, fill):
    d.ellipse([cx - rx, cy - ry, cx + rx, cy + ry], fill=fill)


def _edge_markers(rnd, d, colour, radius):
    """One or two blobs in the left/right margins that the centre crop removes."""
    for _ in range(rnd.randint(1, 2)):
        cx = rnd.choice([rnd.randint(8, 20), rnd.randint(W - 20, W - 8)])
        cy = rnd.randint(30, H - 30)
        _ellipse(d, cx, cy, radius, radius, colour)


def _spots(rnd, n, box, r_range, avoid=()):
    """n non-overlapping circle centres inside box = (x0, y0, x1, y1); starts over when the first ones
    leave no room for the rest."""
    for _ in range(50):
        out = []
        for _ in range(100):
            if len(out) == n:
                return out
            r = rnd.randint(*r_range)
            x = rnd.randint(box[0] + r, box[2] - r)
            y = rnd.randint(box[1] + r, box[3] - r)
            if all((x - a) ** 2 + (y - b) ** 2 > (r + c + 6) ** 2 for a, b, c in out + list(avoid)):
                out.append((x, y, r))
        if len(out) == n:
            return out
    raise RuntimeError('could not place spots')


def render_xray(rnd):
    bg = rnd.randint(10, 30)
    img = Image.new('RGB', (W, H), (bg, bg, bg))
    d = ImageDraw.Draw(img)
    body = rnd.randint(110, 140)
    _ellipse(d, 160 + rnd.randint(-4, 4), 140, 112, 120, (body,) * 3)
    lung = rnd.randint(40, 65)
    # image-left lung = patient's right
    lungs = {'right': (110 + rnd.randint(-4, 4), 130, 40, 80), 'left': (210 + rnd.randint(-4, 4), 130, 40, 80)}
    for cx, cy, rx, ry in lungs.values():
        _ellipse(d, cx, cy, rx, ry, (lung,) * 3)
    heart = min(255, body + rnd.randint(10, 30))  # dimmer than any nodule
    _ellipse(d, 172, 175, 26, 28, (heart,) * 3)
    n = {side: rnd.choice([0, 0, 1, 1, 2]) for side in lungs}
    while n['right'] + n['left'] > 3:
        n[rnd.choice(['right', 'left'])] -= 1
    nod = rnd.randint(215, 255)
    ev = []
    for side, (cx, cy, rx, ry) in lungs.items():
        for x, y, r in _spots(rnd, n[side], (cx - rx + 14, cy - ry + 22, cx + rx - 14, cy + ry - 22), (13, 15)):
            _ellipse(d, x, y, r, r, (nod,) * 3)
            ev.append((x, y, r, f'nodule-{side}'))
    _edge_markers(rnd, d, (nod,) * 3, 10)
    total = n['right'] + n['left']
    side = 'both' if n['right'] and n['left'] else 'right' if n['right'] else 'left' if n['left'] else 'neither'
    qa = [
        ('What modality is this?', 'x-ray', 'OPEN', 'modality'),
        ('Is there a nodule in the left lung?', 'yes' if n['left'] else 'no', 'CLOSED', 'presence'),
        ('Is there a nodule in the right lung?', 'yes' if n['right'] else 'no', 'CLOSED', 'presence'),
        ('Which side is abnormal?', side, 'OPEN', 'position'),
        ('How many nodules are there?', COUNT_WORDS[total], 'OPEN', 'count'),
        ('Is this chest x-ray normal?', 'yes' if total == 0 else 'no', 'CLOSED', 'abnormality'),
    ]
    return img, qa, ev


def render_ct(rnd):
    img = Image.new('RGB', (W, H), (0, 0, 0))
    d = ImageDraw.Draw(img)
    body = rnd.randint(80, 105)
    _ellipse(d, 160, 128, 118, 100, (body,) * 3)
    organ = rnd.randint(125, 150)
    ox, oy = 125 + rnd.randint(-5, 5), 120 + rnd.randint(-5, 5)
    _ellipse(d, ox, oy, 62, 52, (organ,) * 3)
    _ellipse(d, 215, 140, 18, 18, (rnd.randint(165, 185),) * 3)  # a vertebra-like disc, dimmer than a bright lesion
    n = rnd.choice([0, 1, 1, 2, 2])
    bright = rnd.random() < 0.5
    lv = rnd.randint(215, 255) if bright else rnd.randint(10, 40)
    ev = []
    for x, y, r in _spots(rnd, n, (ox - 44, oy - 34, ox + 44, oy + 34), (13, 15)):
        _ellipse(d, x, y, r, r, (lv,) * 3)
        ev.append((x, y, r, 'lesion-bright' if bright else 'lesion-dark'))
    _edge_markers(rnd, d, (lv,) * 3, 10)
    qa = [
        ('What modality is this?', 'ct', 'OPEN', 'modality'),
        ('Is there a lesion in the liver?', 'yes' if n else 'no', 'CLOSED', 'presence'),
        ('How many lesions are there?', COUNT_WORDS[n], 'OPEN', 'count'),
    ]
    if n:
        qa.append(('Is the lesion bright or dark?', 'bright' if bright else 'dark', 'OPEN', 'attribute'))
    return img, qa, ev


STAINS = {'purple': (115, 45, 140), 'blue': (50, 70, 175), 'brown': (135, 85, 35)}


def render_histology(rnd):
    bg = (235 + rnd.randint(-8, 8), 190 + rnd.randint(-10, 10), 205 + rnd.randint(-10, 10))
    img = Image.new('RGB', (W, H), bg)
    d = ImageDraw.Draw(img)
    stain = rnd.choice(sorted(STAINS))
    base = STAINS[stain]
    high = rnd.random() < 0.5
    n = rnd.randint(40, 55) if high else rnd.randint(8, 16)
    ev = []
    for _ in range(n):
        x, y, r = rnd.randint(50, 270), rnd.randint(10, 246), rnd.randint(4, 6)
        c = tuple(max(0, min(255, v + rnd.randint(-15, 15))) for v in base)
        _ellipse(d, x, y, r, r, c)
        ev.append((x, y, r, f'nucleus-{stain}'))
    qa = [
        ('What modality is this?', 'histology', 'OPEN', 'modality'),
        ('What is the stain colour?', stain, 'OPEN', 'colour'),
        ('Is the cell density high?', 'yes' if high else 'no', 'CLOSED', 'attribute'),
    ]
    return img, qa, ev


def render_microscopy(rnd):
    img = Image.new('RGB', (W, H), (0, 0, 0))
    d = ImageDraw.Draw(img)
    green = rnd.random() < 0.5
    n = rnd.randint(1, 3)
    v = rnd.randint(170, 255)
    col = (20, v, 40) if green else (v, 25, 30)
    ev = []
    for x, y, r in _spots(rnd, n, (60, 20, 260, 236), (14, 17)):
        _ellipse(d, x, y, r + 4, r + 4, tuple(c // 3 for c in col))  # glow
        _ellipse(d, x, y, r, r, col)
        ev.append((x, y, r, 'cell-green' if green else 'cell-red'))
    _edge_markers(rnd, d, col, 10)
    qa = [
        ('What modality is this?', 'microscopy', 'OPEN', 'modality'),
        ('What colour is the fluorescence?', 'green' if green else 'red', 'OPEN', 'colour'),
        ('How many cells are there?', COUNT_WORDS[n], 'OPEN', 'count'),
    ]
    return img, qa, ev


RENDER = {'xray': render_xray, 'ct': render_ct, 'histology': render_histology, 'microscopy': render_microscopy}


def make_image(seed, index, evidence=False):
    """Image `index` of the stream `seed`: (kind, PIL image, [(question, answer, answer_type, question_type)]),
    and with evidence=True the answer-bearing blobs too: [(x, y, radius, label)] in the image's pixels."""
    rnd = random.Random(seed * 1_000_003 + index)
    kind = KINDS[index % len(KINDS)]
    img, qa, ev = RENDER[kind](rnd)
    return (kind, img, qa, ev) if evidence else (kind, img, qa)


def make_split(split, n_images, seed, per_image=None):
    """Entries (LLaVA-Med test.json format) and images of a split: per_image questions drawn per image (all if None)."""
    entries, images = [], []
    qid = 1
    for i in range(n_images):
        kind, img, qa = make_image(seed, i)
        name = f'{split}-{i:04d}.png'
        images.append((name, img))
        rnd = random.Random(seed * 7919 + i)
        if per_image is None:
            chosen = qa
        else:  # one closed and one open question where the image has both, else open ones
            closed = [x for x in qa if x[2] == 'CLOSED']
            opened = [x for x in qa if x[2] == 'OPEN']
            chosen = ([rnd.choice(closed)] if closed else []) + rnd.sample(opened, per_image - (1 if closed else 0))
        for q, a, at, qt in chosen:
            entries.append({
                'id': qid, 'image': name, 'answer_type': at, 'question_type': qt, 'modality': kind,
                'conversations': [{'from': 'human', 'value': f'{q}\n<image>'}, {'from': 'gpt', 'value': a}],
            })
            qid += 1
    return entries, images


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('out')
    ap.add_argument('--split', default='test')
    ap.add_argument('--images', type=int, default=40)
    ap.add_argument('--seed', type=int, default=7)
    ap.add_argument('--per-image', type=int, default=2)
    a = ap.parse_args()
    entries, images = make_split(a.split, a.images, a.seed, a.per_image)
    os.makedirs(os.path.join(a.out, 'images'), exist_ok=True)
    for name, img in images:
        img.save(os.path.join(a.out, 'images', name), optimize=True)
    with open(os.path.join(a.out, f'{a.split}.json'), 'w') as f:
        json.dump(entries, f, indent=1)
        f.write('\n')
    print(f'{len(entries)} questions on {len(images)} images -> {a.out}')


if __name__ == '__main__':
    main()
