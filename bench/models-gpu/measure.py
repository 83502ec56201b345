#!/usr/bin/env python3
"""Asks llama-server what it allocates for each case of cases.json and records llama.cpp's own
numbers: the no-alloc dry run table that --fit prints before loading (whole MiB, costs nothing),
and, for cases marked load, the buffer lines of a real load (2 decimals; weights read from the
sparse file are zeros). The server is stopped as soon as the numbers are out."""
import argparse, json, os, re, signal, socket, subprocess, sys, time

ap = argparse.ArgumentParser()
ap.add_argument('--server'); ap.add_argument('--cases'); ap.add_argument('--shapes'); ap.add_argument('--out')
ap.add_argument('--mode', default='both', choices=['dry', 'load', 'both'])
ap.add_argument('--timeout', type=float, default=240)
a = ap.parse_args()

def free_port():
    s = socket.socket(); s.bind(('127.0.0.1', 0)); p = s.getsockname()[1]; s.close(); return p

KEEP = re.compile(r'buffer size|memory breakdown|\|\s+-\s|offloaded|error|failed|out of memory|CUDA0|Vulkan0|ggml_vulkan:|graph:|n_ctx|flash_attn')

# A caller's `timeout` (bench/vulkan-gpu.sh) ends us with SIGTERM: unwind, so `finally` stops the
# server, which runs in its own session and would otherwise outlive us holding the GPU.
signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))

def run(case, fit):
    args = [a.server, '-m', os.path.join(a.shapes, case['shape']), '--host', '127.0.0.1', '--port', str(free_port()),
            '--no-webui', '--no-warmup', '-lv', '4'] + case['args'] + ['--fit', 'on' if fit else 'off']
    done = re.compile(r'common_memory_breakdown_print: \|\s+- Host' if fit else r'sched_reserve: graph')
    t0 = time.time()
    p = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True)
    lines, ok = [], False
    try:
        for line in p.stdout:
            if KEEP.search(line): lines.append(line.rstrip())
            if done.search(line): ok = True; break
            if time.time() - t0 > a.timeout: break
    finally:
        try: os.killpg(p.pid, signal.SIGKILL)
        except ProcessLookupError: pass
        p.wait()
    return {'ok': ok, 'seconds': round(time.time() - t0, 1), 'lines': lines}

cases = json.load(open(a.cases))
results = []
for c in cases:
    r = {'id': c['id']}
    if a.mode in ('dry', 'both'):
        r['dry'] = run(c, True)
    if a.mode in ('load', 'both') and c.get('load'):
        r['load'] = run(c, False)
    print(c['id'], {k: (v['ok'], v['seconds']) for k, v in r.items() if isinstance(v, dict)}, flush=True)
    results.append(r)
    json.dump(results, open(a.out, 'w'), indent=1)
print('wrote', a.out)
