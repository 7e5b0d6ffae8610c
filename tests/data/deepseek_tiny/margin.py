"""The wide-margin V3 pair (v3_margin_bf16, v3_margin_fp8) of make_tiny.py: v3_bf16's seed with unit attention gain
and routers re-fitted so that every router decision the checks make wins by at least MARGIN.

Why: with N(0, 1/h) router rows, a token's 3rd and 4th best experts (or 2nd and 3rd best groups) are often
within 1e-3 of each other, and the GPU's bf16 activations (about 2^-9 relative per rounding) flip such routes;
the flipped token then moves the logits by tens of percent and a GPU check cannot tell a bug from a flip.

Margin of one token at one MoE layer, in units of the selection score c = sigmoid(logit) + bias:
    group margin  = (topk_group-th best group score) - (next group score)    [group score: sum of its top-2 c]
    expert margin = (top_k-th best c in the kept groups) - (next c in the kept groups)
    margin        = min(group margin, expert margin)
bf16 noise on c is about 0.25 (max sigmoid slope) x 0.4% x |logit| ~ 1e-3; FP8 activations (e4m3, 2^-4) ~ 1e-2.
MARGIN = 0.05 is 50x the first and 5x the second.

How: for each MoE layer in turn, transformers' router inputs for every token the checks feed (the golden prompts
and their N_CONT greedy continuation tokens, under both the bf16 and the FP8 weights) are captured, and the router
rows are moved from their random start by Adam on sum(relu(1.5 MARGIN - margin)) + a pull towards the start.
Later layers' inputs and the continuations depend on earlier routers, so the layers are fitted in order and the
whole is repeated until a fresh pass finds every margin >= MARGIN. The bias (0.1 N(0, 1)) is left as is: it still
changes the choice of some tokens (counted and printed), the weights are still sigmoid(logit) of the chosen experts
(bias-free, varying per token), and group-limited selection still removes experts a plain top-3 would take.
"""
import os
import torch
from safetensors.torch import save_file

import make_tiny as mt

MARGIN = 0.05
# v3_bf16 doubles q_b_proj and kv_a_proj_with_mqa (peaky attention: scores up to ~20). FP8 activations (2^-4
# relative) move such scores by ~1 and swap near-tied keys: the attention analogue of a route flip. These
# checkpoints keep unit gain so that the GPU check measures arithmetic, not near-ties.
ATTN_GAIN = 1.0
N_CONT = 6  # troupe_cuda_check's decode steps per prompt (3 + 3 since the graph checks); 12 did not converge


def route_parts(c, logits, bias):
    """(margin [N], chosen [N, top_k], chosen without bias, chosen without groups) for router logits [N, E]."""
    E, G, k = c["n_routed_experts"], c["n_group"], c["num_experts_per_tok"]
    choice = logits.sigmoid() + bias
    groups = choice.view(-1, G, E // G).topk(2, dim=-1).values.sum(-1)
    gs = groups.sort(dim=-1, descending=True).values
    group_margin = gs[:, c["topk_group"] - 1] - gs[:, c["topk_group"]]
    kept = torch.zeros_like(groups, dtype=torch.bool)
    kept.scatter_(1, groups.topk(c["topk_group"], dim=-1).indices, True)
    kept = kept.unsqueeze(-1).expand(-1, G, E // G).reshape(-1, E)
    masked = choice.masked_fill(~kept, float("-inf"))
    ms = masked.sort(dim=-1, descending=True).values
    margin = torch.minimum(group_margin, ms[:, k - 1] - ms[:, k])
    chosen = masked.topk(k, dim=-1).indices.sort(-1).values
    no_bias = logits.sigmoid().masked_fill(~kept, float("-inf")).topk(k, dim=-1).indices.sort(-1).values
    no_groups = choice.topk(k, dim=-1).indices.sort(-1).values
    return margin, chosen, no_bias, no_groups


def moe_layers(c):
    return range(c["first_k_dense_replace"], c["num_hidden_layers"])


def continue_greedy(model, prompt, n):
    seq = list(prompt)
    with torch.no_grad():
        for _ in range(n):
            seq.append(int(model(torch.tensor([seq])).logits[0, -1].argmax()))
    return seq


def router_inputs(model, c, seqs):
    """Per MoE layer: the router's float32 inputs [sum(len), hidden] over seqs, from transformers' forward."""
    caught = {L: [] for L in moe_layers(c)}
    hooks = [model.model.layers[L].mlp.gate.register_forward_hook(
        lambda m, i, o, L=L: caught[L].append(i[0].reshape(-1, c["hidden_size"]).detach().float()))
        for L in moe_layers(c)]
    with torch.no_grad():
        for s in seqs:
            model(torch.tensor([s]))
    for h in hooks:
        h.remove()
    return {L: torch.cat(v) for L, v in caught.items()}


def fit_router(c, x, w0, bias, steps=3000):
    w = w0.clone().requires_grad_(True)
    opt = torch.optim.Adam([w], lr=2e-3)
    for _ in range(steps):
        margin = route_parts(c, x @ w.T, bias)[0]
        if margin.min().item() >= 1.2 * MARGIN:
            break
        loss = torch.relu(1.5 * MARGIN - margin).sum() + 1e-2 * ((w - w0) ** 2).sum()
        opt.zero_grad()
        loss.backward()
        opt.step()
    return w.detach()


def variants(c, w):
    """The (name, values the engine sees) of the bf16 and the FP8 checkpoint of master weights w (no files)."""
    seen_fp8 = {}
    for k, v in w.items():
        if mt.is_fp8_weight(k) and not k.startswith("lm_head"):
            seen_fp8[k] = mt.dequantize_fp8(*mt.quantize_fp8(v))
        else:
            seen_fp8[k] = v.float()
    return [("v3_margin_bf16", w), ("v3_margin_fp8", seen_fp8)]


def fit_all(c, w, prompts):
    w = dict(w)
    for rnd in range(6):
        worst = float("inf")
        for L in moe_layers(c):
            gate, bias = f"model.layers.{L}.mlp.gate.weight", w[f"model.layers.{L}.mlp.gate.e_score_correction_bias"]
            xs = []
            for _, seen in variants(c, w):
                model = mt.hf_model(c, seen)
                seqs = [continue_greedy(model, p, N_CONT) for p in prompts]
                xs.append(router_inputs(model, c, seqs)[L])
            x = torch.cat(xs)
            worst = min(worst, route_parts(c, x @ w[gate].T, bias)[0].min().item())
            w[gate] = fit_router(c, x, w[gate], bias)
        print(f"round {rnd}: smallest margin before refit {worst:.4f}")
        if worst >= MARGIN:
            return w
    raise RuntimeError("router margins did not converge")


def build_pair(c, seed):
    w = mt.make_weights(c, seed, attn_gain=ATTN_GAIN)
    g = torch.Generator().manual_seed(seed + 1)
    prompts = [torch.randint(0, c["vocab_size"], (n,), generator=g).tolist() for n in mt.PROMPT_LENS]
    w = fit_all(c, w, prompts)
    for name, fp8 in [("v3_margin_bf16", False), ("v3_margin_fp8", True)]:
        out_dir = os.path.join(mt.HERE, name)
        seen = mt.write_checkpoint(c, w, out_dir, fp8)
        model = mt.hf_model(c, seen)
        golden = {}
        for i, p in enumerate(prompts):
            seq = continue_greedy(model, p, N_CONT)
            with torch.no_grad():
                logits = model(torch.tensor([p])).logits[0].float().contiguous()
            xs = router_inputs(model, c, [seq])
            parts = [route_parts(c, xs[L] @ w[f"model.layers.{L}.mlp.gate.weight"].T,
                                 w[f"model.layers.{L}.mlp.gate.e_score_correction_bias"]) for L in moe_layers(c)]
            margins = torch.stack([m for m, *_ in parts])
            golden[f"prompt.{i}.tokens"] = torch.tensor(p, dtype=torch.int32)
            golden[f"prompt.{i}.logits"] = logits
            golden[f"prompt.{i}.continuation"] = torch.tensor(seq[len(p):], dtype=torch.int32)
            golden[f"prompt.{i}.route_margin"] = margins.contiguous()
            rows = margins.numel()
            by_bias = sum(int((ch != nb).any(-1).sum()) for _, ch, nb, _ in parts)
            by_group = sum(int((ch != ng).any(-1).sum()) for _, ch, _, ng in parts)
            print(f"{name} prompt {i}: {len(p)} tokens + {N_CONT}, logit std {logits.std().item():.3f}, "
                  f"min route margin {margins.min().item():.4f}; of {rows} routes the bias changes {by_bias}, "
                  f"the group limit {by_group}")
        save_file(golden, os.path.join(out_dir, "golden.safetensors"))
