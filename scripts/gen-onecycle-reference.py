#!/usr/bin/env python3
"""Writes test/fixtures/onecycle.json: torch.optim.lr_scheduler.OneCycleLR's rate and momentum at every step, and
(`trajectories`) the weights an optimizer reaches when OneCycleLR cycles its momentum (SGD's momentum, AdamW's beta1)
on fixed gradients: what pins layertune applying a per-step momentum in the update maths, not only computing it.

Run with Debian's python3-torch (`bash ../shared/peer/setup.sh` installs it), under /usr/bin/python3:
    /usr/bin/python3 scripts/gen-onecycle-reference.py
Rates are divided by max_lr so they compare with layertune's shapes, which are relative to the peak.
"""
import json
import math
import os

import torch

CASES = [
    # PyTorch's defaults (cos, two phases, pct_start 0.3, div 25, final div 1e4, momentum 0.85..0.95)
    dict(name="defaults-sgd", total_steps=40, kwargs={}, optimizer="sgd"),
    dict(name="pct0.25-linear", total_steps=23, kwargs=dict(pct_start=0.25, anneal_strategy="linear"), optimizer="sgd"),
    dict(name="three-phase", total_steps=30, kwargs=dict(three_phase=True, div_factor=10.0, final_div_factor=100.0), optimizer="sgd"),
    # momentum cycles betas[0] for Adam-style optimizers
    dict(name="adamw-momentum", total_steps=17, kwargs=dict(pct_start=0.4, base_momentum=0.8, max_momentum=0.9), optimizer="adamw"),
]


def run(case):
    max_lr = 0.1
    p = torch.nn.Parameter(torch.zeros(1))
    if case["optimizer"] == "sgd":
        opt = torch.optim.SGD([p], lr=max_lr, momentum=0.9)
        mom = lambda: opt.param_groups[0]["momentum"]
    else:
        opt = torch.optim.AdamW([p], lr=max_lr)
        mom = lambda: opt.param_groups[0]["betas"][0]
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=max_lr, total_steps=case["total_steps"], **case["kwargs"])
    lrs, moms = [], []
    for _ in range(case["total_steps"]):
        lrs.append(opt.param_groups[0]["lr"] / max_lr)
        moms.append(mom())
        opt.step()
        sched.step()
    return dict(name=case["name"], totalSteps=case["total_steps"], config=config_of(case["kwargs"]), lr=lrs, momentum=moms)


def config_of(k):
    return dict(
        pctStart=k.get("pct_start", 0.3),
        divFactor=k.get("div_factor", 25.0),
        finalDivFactor=k.get("final_div_factor", 1e4),
        annealStrategy=k.get("anneal_strategy", "cos"),
        threePhase=k.get("three_phase", False),
        baseMomentum=k.get("base_momentum", 0.85),
        maxMomentum=k.get("max_momentum", 0.95),
    )


# float32 parameters, gradients fixed per step, as layertune's optimizer test feeds them
TRAJECTORIES = [
    dict(name="momentum-cycled", optimizer="sgd", total_steps=12, kwargs=dict(pct_start=0.3)),
    dict(name="adamw-beta1-cycled", optimizer="adamw", total_steps=12, kwargs=dict(pct_start=0.4, base_momentum=0.8, max_momentum=0.9)),
]


def grad_at(t):
    return [math.sin(t + 1.0), math.cos(2.0 * t), 0.1 * t - 0.5]


def trajectory(case):
    max_lr = 0.1
    p = torch.nn.Parameter(torch.tensor([1.0, -2.0, 0.5], dtype=torch.float32))
    if case["optimizer"] == "sgd":
        opt = torch.optim.SGD([p], lr=max_lr, momentum=0.9)
        mom = lambda: opt.param_groups[0]["momentum"]
    else:
        opt = torch.optim.AdamW([p], lr=max_lr, weight_decay=0.01)
        mom = lambda: opt.param_groups[0]["betas"][0]
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=max_lr, total_steps=case["total_steps"], cycle_momentum=True, **case["kwargs"])
    grads, moms, weights = [], [], []
    for t in range(case["total_steps"]):
        g = torch.tensor(grad_at(t), dtype=torch.float32)
        grads.append(g.tolist())
        moms.append(mom())
        p.grad = g.clone()
        opt.step()
        sched.step()
        weights.append(p.detach().tolist())
    return dict(
        name=case["name"],
        optimizer=case["optimizer"],
        totalSteps=case["total_steps"],
        maxLr=max_lr,
        weightDecay=0.01 if case["optimizer"] == "adamw" else 0.0,
        config=config_of(case["kwargs"]),
        initial=[1.0, -2.0, 0.5],
        grads=grads,
        momentum=moms,
        weights=weights,
    )


def main():
    out = os.path.join(os.path.dirname(__file__), "..", "test", "fixtures", "onecycle.json")
    data = dict(generator="scripts/gen-onecycle-reference.py", torch=torch.__version__, cases=[run(c) for c in CASES], trajectories=[trajectory(c) for c in TRAJECTORIES])
    tmp = out + ".tmp"
    with open(tmp, "w") as f:
        json.dump(data, f, indent=1)
        f.write("\n")
    os.replace(tmp, out)
    print(f"wrote {out} (torch {torch.__version__})")


if __name__ == "__main__":
    main()
