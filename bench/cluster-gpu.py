#!/usr/bin/env python3
"""Cluster figures on a 2-GPU machine; driven by bench/cluster-gpu.sh (see bench/README.md).

  split: one model, layers split between GPU0 (llama.cpp here) and GPU1 (an rpc-server as the peer):
         bare llama.cpp (hand-run rpc-server, manual -ts sweep) vs Strata (strata-peer's rpc-server,
         Strata's automatic split), direct vs through the tunnel; plus the one-GPU baseline and
         load times of llama-server over direct vs tunnel.
  place: two models streaming at once: one per GPU (the second placed on the peer through the
         agent and reached through the tunnel) vs both on GPU0.
All speeds are llama.cpp's own figures (llama-bench avg_ts; llama-server timings)."""
import argparse, json, os, secrets, shutil, signal, socket, subprocess, sys, tempfile, threading, time, urllib.request

procs = []
key_dirs = []


def log(msg):
    print(f"[cluster-gpu {time.strftime('%H:%M:%S')}] {msg}", flush=True)


def start(cmd, env=None, logfile=None):
    f = open(logfile, 'ab') if logfile else subprocess.DEVNULL
    p = subprocess.Popen(cmd, env={**os.environ, **(env or {})}, stdout=f, stderr=subprocess.STDOUT, start_new_session=True)
    procs.append(p)
    return p


def stop(p, grace=10):
    if p.poll() is None:
        os.killpg(p.pid, signal.SIGTERM)
        try:
            p.wait(grace)
        except subprocess.TimeoutExpired:
            os.killpg(p.pid, signal.SIGKILL)
            p.wait()


def stop_all():
    for p in procs:
        try:
            stop(p, 5)
        except Exception:
            pass
    for d in key_dirs:
        shutil.rmtree(d, ignore_errors=True)


def wait_port(port, timeout=120, proc=None):
    t0 = time.time()
    while time.time() - t0 < timeout:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f'process exited ({proc.returncode}) before port {port} opened')
        try:
            socket.create_connection(('127.0.0.1', port), 0.5).close()
            return
        except OSError:
            time.sleep(0.2)
    raise RuntimeError(f'port {port} did not open in {timeout} s')


def wait_line(path, text, timeout=120, proc=None):
    t0 = time.time()
    while time.time() - t0 < timeout:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f'{path}: process exited before "{text}":\n' + open(path).read()[-3000:])
        if os.path.exists(path) and text in open(path, errors='replace').read():
            return open(path, errors='replace').read()
        time.sleep(0.2)
    raise RuntimeError(f'{path}: no "{text}" in {timeout} s')


# The peer's GPU: GPU1 on a 2-GPU machine; on a one-GPU machine the peer shares GPU0 (then the
# figures measure what RPC, the tunnel and the agent cost, not what a second GPU adds).
PEER_GPU = '1'
SHARED = False


def free_port():
    s = socket.socket()
    s.bind(('127.0.0.1', 0))
    p = s.getsockname()[1]
    s.close()
    return p


def gpu_free():
    out = subprocess.check_output(['nvidia-smi', '--query-gpu=index,memory.free,memory.total,name', '--format=csv,noheader,nounits'], text=True)
    res = {}
    for line in out.strip().splitlines():
        i, free, total, name = [x.strip() for x in line.split(',', 3)]
        res[int(i)] = {'free': int(free) * 2**20, 'total': int(total) * 2**20, 'name': name}
    return res


def bench(a, extra, label, env=None):
    """llama-bench pp512/tg128; returns one row per -ts value."""
    cmd = [f'{a.bin}/llama-bench', '-m', a.model, '-ngl', '99', '-fa', '1', '-p', '512', '-n', '128', '-r', str(a.reps), '-o', 'json', *extra]
    log(f'{label}: {" ".join(cmd[1:])}')
    t0 = time.time()
    r = subprocess.run(cmd, env={**os.environ, 'CUDA_VISIBLE_DEVICES': '0', **(env or {})}, capture_output=True, text=True, timeout=900)
    if r.returncode != 0:
        raise RuntimeError(f'llama-bench failed for {label}:\n{r.stderr[-3000:]}')
    rows = {}
    for e in json.loads(r.stdout):
        key = norm_ts(str(e.get('tensor_split', '')))
        kind = 'pp' if e['n_prompt'] > 0 else 'tg'
        rows.setdefault(key, {'label': label, 'ts': key})[kind] = round(e['avg_ts'], 2)
        rows[key][kind + '_sd'] = round(e['stddev_ts'], 2)
    out = list(rows.values())
    log(f'{label}: {out} ({time.time() - t0:.0f} s)')
    return out


def norm_ts(ts):
    """'1.00/3.00' and '1/3' alike; '-' for no split."""
    try:
        v = [float(x) for x in ts.replace(',', '/').split('/') if x.strip()]
    except ValueError:
        return ts
    while v and v[-1] == 0:
        v.pop()
    return '/'.join(f'{x:g}' for x in v) or '-'


def wait_health(p, port, logfile, label, timeout=600):
    """Until llama-server's /health says 200; its log tail in the error when it exits first."""
    t0 = time.time()
    while True:
        if p.poll() is not None:
            raise RuntimeError(f'llama-server {label} exited:\n' + open(logfile).read()[-3000:])
        try:
            with urllib.request.urlopen(f'http://127.0.0.1:{port}/health', timeout=2) as r:
                if r.status == 200:
                    return
        except Exception:
            pass
        if time.time() - t0 > timeout:
            raise RuntimeError(f'llama-server {label} not ready in {timeout} s')
        time.sleep(0.1)


def load_time(a, rpc, ts, label):
    port = free_port()
    lf = f'{a.work}/llama-server-{label}.log'
    t0 = time.time()
    p = start([f'{a.bin}/llama-server', '-m', a.model, '--host', '127.0.0.1', '--port', str(port), '-ngl', '99', '-fa', 'on', '-c', '4096',
               '--rpc', rpc, '-ts', ts.replace('/', ','), '--no-webui'], env={'CUDA_VISIBLE_DEVICES': '0'}, logfile=lf)
    try:
        wait_health(p, port, lf, label)
        dt = time.time() - t0
        log(f'load {label}: {dt:.1f} s')
        return round(dt, 1)
    finally:
        stop(p)


def agent(a, extra=(), env=None):
    token = 'sp1_' + secrets.token_urlsafe(32)
    lf = f'{a.work}/agent.log'
    p = start([a.node, a.peer_js, 'serve', '--listen', '127.0.0.1:7399', '--rpc-server', f'{a.bin}/ggml-rpc-server', '--idle-stop', '0',
               '--state-dir', f'{a.work}/agent-state', *extra], env={'CUDA_VISIBLE_DEVICES': PEER_GPU, 'STRATA_PEER_TOKEN': token, **(env or {})}, logfile=lf)
    wait_line(lf, 'strata-peer ready', 60, p)
    return p, token


def peer_env(token):
    # Secrets never go on a command line (ps shows it to every local user): strata-peer reads STRATA_PEER_TOKEN.
    return {'STRATA_PEER_TOKEN': token}


def peer_cli(a, token, *args):
    return subprocess.check_output([a.node, a.peer_js, *args, '--peer', '127.0.0.1:7399'], env={**os.environ, **peer_env(token)}, text=True, timeout=300)


def key_file(key):
    # llama-server's key as the sidecar gives it (src/daemon/llamaProcess.ts): --api-key-file, a 0600 file in a 0700 folder.
    d = tempfile.mkdtemp(prefix='strata-key-')
    key_dirs.append(d)  # removed by stop_all, after the servers
    path = os.path.join(d, 'llama-server-api-key')
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, 'w') as f:
        f.write(key + '\n')
    return path


def split(a):
    res = {'model': os.path.basename(a.model), 'gpus': gpu_free(), 'peer_gpu': PEER_GPU, 'shared_gpu': SHARED}
    log(f"GPUs: {res['gpus']}")
    # 1. One GPU, no RPC: the baseline.
    res['one_gpu'] = bench(a, [], 'one GPU (GPU0)')[0]
    # 2. Bare llama.cpp: rpc-server run by hand on GPU1, manual -ts sweep (RPC device first).
    g = gpu_free()
    share = 2 if SHARED else 1  # one GPU shared by both sides: each may plan with half of it
    plan = json.loads(subprocess.check_output([a.node, a.plan_js, '--model', a.model, '--ctx', '4096', '--mode', 'split',
                                               '--rpc-free', str(g[int(PEER_GPU)]['free'] // share), '--local-free', str(g[0]['free'] // share)], text=True))
    res['auto_plan_bare'] = plan
    rpc_port = free_port()
    rpc = start([f'{a.bin}/ggml-rpc-server', '-H', '127.0.0.1', '-p', str(rpc_port)], env={'CUDA_VISIBLE_DEVICES': PEER_GPU}, logfile=f'{a.work}/rpc-bare.log')
    wait_port(rpc_port, 60, rpc)
    # SWEEP=1/1 shortens a big model's run (each -ts value reloads it); LOADS=0 skips load timing.
    sweep = os.environ.get('SWEEP', '1/3,1/1,3/1').split(',')
    res['bare_direct'] = bench(a, ['--rpc', f'127.0.0.1:{rpc_port}', '-ts', ','.join(sweep + [plan['ts']])], 'bare rpc-server, direct')
    stop(rpc)
    # 3. Strata: strata-peer's rpc-server on GPU1, Strata's split, direct and through the tunnel.
    ag, token = agent(a)
    info = json.loads(peer_cli(a, token, 'info'))
    res['agent_info'] = {'rttMs': info['rttMs'], 'rpc': info['rpc'], 'devices': info['devices']}
    g = gpu_free()
    plan = json.loads(subprocess.check_output([a.node, a.plan_js, '--model', a.model, '--ctx', '4096', '--mode', 'split',
                                               '--rpc-free', ','.join(str(d['freeBytes'] // share) for d in info['devices']), '--local-free', str(g[0]['free'] // share)], text=True))
    res['auto_plan'] = plan
    log(f"Strata's split: {plan['summary']} {plan['lines']}")
    tport = free_port()
    tl = f'{a.work}/tunnel.log'
    tun = start([a.node, a.peer_js, 'connect', '--peer', '127.0.0.1:7399', '--listen', f'127.0.0.1:{tport}'], env=peer_env(token), logfile=tl)
    wait_line(tl, 'tunnel ready', 120, tun)
    direct = f"127.0.0.1:{info['rpc']['port']}"
    tunnel = f'127.0.0.1:{tport}'
    res['strata_direct'] = bench(a, ['--rpc', direct, '-ts', plan['ts']], 'strata-peer rpc-server, direct')[0]
    res['strata_tunnel'] = bench(a, ['--rpc', tunnel, '-ts', plan['ts']], 'strata-peer rpc-server, tunnel')[0]
    if os.environ.get('LOADS', '1') != '0':
        res['load_s'] = {'direct': load_time(a, direct, plan['ts'], 'direct'), 'tunnel': load_time(a, tunnel, plan['ts'], 'tunnel')}
    stop(tun)
    stop(ag)
    # Ratios the issue asks for.
    by_ts = {x['ts']: x for x in res['bare_direct']}
    manual = [by_ts[norm_ts(t)] for t in sweep]
    best = max(manual, key=lambda r: r['tg'])
    auto_bare = by_ts[norm_ts(res['auto_plan_bare']['ts'])]
    r = lambda x, y: round(x / y, 3) if y else None
    res['ratios'] = {
        'strata_tunnel_vs_bare_best': {'pp': r(res['strata_tunnel']['pp'], max(x['pp'] for x in res['bare_direct'])), 'tg': r(res['strata_tunnel']['tg'], best['tg'])},
        'auto_vs_best_manual': {'pp': r(auto_bare['pp'], max(x['pp'] for x in manual)), 'tg': r(auto_bare['tg'], best['tg'])},
        'tunnel_vs_direct': {'pp': r(res['strata_tunnel']['pp'], res['strata_direct']['pp']), 'tg': r(res['strata_tunnel']['tg'], res['strata_direct']['tg'])},
        'strata_direct_vs_bare_same_split': {'pp': r(res['strata_direct']['pp'], auto_bare['pp']), 'tg': r(res['strata_direct']['tg'], auto_bare['tg'])},
        'split_vs_one_gpu': {'pp': r(best['pp'], res['one_gpu']['pp']), 'tg': r(best['tg'], res['one_gpu']['tg'])},
    }
    return res


def stream(url, key, prompt, n, out, name):
    body = json.dumps({'prompt': prompt, 'n_predict': n, 'temperature': 0, 'ignore_eos': True, 'cache_prompt': False}).encode()
    req = urllib.request.Request(f'{url}/completion', data=body, headers={'Content-Type': 'application/json', 'Authorization': f'Bearer {key}'})
    t0 = time.time()
    with urllib.request.urlopen(req, timeout=600) as r:
        j = json.loads(r.read())
    out[name] = {'pp': round(j['timings']['prompt_per_second'], 1), 'tg': round(j['timings']['predicted_per_second'], 2), 'wall_s': round(time.time() - t0, 2)}


def server(a, label, gpu, args=()):
    port = free_port()
    key = secrets.token_urlsafe(16)
    lf = f'{a.work}/server-{label}.log'
    p = start([f'{a.bin}/llama-server', '-m', a.model, '--host', '127.0.0.1', '--port', str(port), '--api-key-file', key_file(key), '-ngl', '99', '-fa', 'on',
               '-c', '4096', '--no-webui', *args], env={'CUDA_VISIBLE_DEVICES': str(gpu)}, logfile=lf)
    wait_health(p, port, lf, label)
    return p, f'http://127.0.0.1:{port}', key


def both(srvs, n):
    prompt = 'def fibonacci(n):\n    """Return the n-th Fibonacci number."""\n' + '# a comment line to make the prompt longer\n' * 60
    out = {}
    ths = [threading.Thread(target=stream, args=(u, k, prompt, n, out, name)) for name, (u, k) in srvs.items()]
    t0 = time.time()
    for t in ths:
        t.start()
    for t in ths:
        t.join()
    out['wall_s'] = round(time.time() - t0, 2)
    return out


def place(a):
    res = {'model': os.path.basename(a.model), 'peer_gpu': PEER_GPU, 'shared_gpu': SHARED}
    n = a.tokens
    # A: chat here on GPU0, fim placed on the peer (GPU1, or GPU0 when shared) through the agent and the tunnel.
    ag, token = agent(a, ['--models-dir', os.path.dirname(a.model), '--llama-server', f'{a.bin}/llama-server'])
    chat, curl, ckey = server(a, 'chat-gpu0', 0)
    pl = f'{a.work}/place.log'
    pp = start([a.node, a.peer_js, 'place', '--peer', '127.0.0.1:7399', '--role', 'fim', '--model', os.path.basename(a.model),
                '--', '-ngl', '99', '-fa', 'on', '-c', '4096'], env=peer_env(token), logfile=pl)
    text = wait_line(pl, '"apiKey"', 600, pp)
    fim = json.loads([l for l in text.splitlines() if '"apiKey"' in l][-1])
    srvs = {'chat': (curl, ckey), 'fim': (fim['url'], fim['apiKey'])}
    both(srvs, 16)  # warm-up
    res['placed_alone'] = {k: both({k: v}, n)[k] for k, v in srvs.items()}
    res['placed_together'] = both(srvs, n)
    stop(pp)
    stop(ag)
    stop(chat)
    # B: both on GPU0.
    s1, u1, k1 = server(a, 'chat-gpu0b', 0)
    s2, u2, k2 = server(a, 'fim-gpu0b', 0)
    srvs = {'chat': (u1, k1), 'fim': (u2, k2)}
    both(srvs, 16)
    res['one_gpu_together'] = both(srvs, n)
    stop(s1)
    stop(s2)
    t = lambda d: round(d['chat']['tg'] + d['fim']['tg'], 2)
    res['ratios'] = {'placed_vs_one_gpu_total_tg': round(t(res['placed_together']) / t(res['one_gpu_together']), 3)}
    return res


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('what', choices=['split', 'place'])
    ap.add_argument('--model', required=True)
    ap.add_argument('--bin', required=True)
    ap.add_argument('--node', required=True)
    ap.add_argument('--peer-js', required=True)
    ap.add_argument('--plan-js', required=True)
    ap.add_argument('--work', required=True)
    ap.add_argument('--out', required=True)
    ap.add_argument('--reps', type=int, default=3)
    ap.add_argument('--tokens', type=int, default=256)
    a = ap.parse_args()
    os.makedirs(a.work, exist_ok=True)
    global PEER_GPU, SHARED
    if len(gpu_free()) < 2:
        PEER_GPU, SHARED = '0', True
        log('one GPU: the peer shares GPU0 (figures show the cost of RPC, tunnel and agent, not a second GPU)')
    try:
        res = split(a) if a.what == 'split' else place(a)
    finally:
        stop_all()
    with open(a.out, 'w') as f:
        json.dump(res, f, indent=1)
    print(json.dumps(res.get('ratios'), indent=1))


if __name__ == '__main__':
    main()
