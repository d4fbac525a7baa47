"""pywebpush, used as its README shows: webpush(subscription_info, data, vapid_private_key,
vapid_claims, ttl, headers), with a requests.Session per thread (its requests_session
parameter) and a thread pool of T workers. Prints one JSON line per thread count. The
receiver's certificate comes from REQUESTS_CA_BUNDLE.

    REQUESTS_CA_BUNDLE=target/bench-data/push/cert.pem \
      python bench/peers/python/send_pywebpush.py target/bench-data/push/workload.json 4,16,64
"""

import json
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import requests
from pywebpush import WebPushException, webpush


def run(workload, threads):
    local = threading.local()
    vapid = workload["vapid"]
    headers = {"Urgency": workload["urgency"], "Topic": workload["topic"]}
    subs = [{"endpoint": s["endpoint"], "keys": s["keys"]} for s in workload["subscriptions"]]
    errors = []

    def send(sub):
        session = getattr(local, "session", None)
        if session is None:
            session = local.session = requests.Session()
        try:
            response = webpush(
                subscription_info=sub,
                data=workload["payload"],
                vapid_private_key=vapid["private_key"],
                vapid_claims={"sub": vapid["subject"]},
                ttl=workload["ttl"],
                headers=headers,
                requests_session=session,
            )
            return response.status_code == 201
        except (WebPushException, requests.RequestException) as err:
            if not errors:
                errors.append(str(err))
            return False

    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=threads) as pool:
        results = list(pool.map(send, subs, chunksize=16))
    seconds = time.perf_counter() - started
    sent = sum(results)
    if errors:
        print(f"first failure: {errors[0]}", file=sys.stderr)
    print(json.dumps({
        "sender": "pywebpush", "concurrency": threads, "messages": len(subs), "sent": sent,
        "failed": len(subs) - sent, "seconds": seconds, "rate": sent / seconds,
    }), flush=True)


def main():
    path = sys.argv[1]
    counts = sys.argv[2] if len(sys.argv) > 2 else "4,16,64"
    with open(path, encoding="utf-8") as f:
        workload = json.load(f)
    for threads in (int(c) for c in counts.split(",")):
        run(workload, threads)


if __name__ == "__main__":
    main()
