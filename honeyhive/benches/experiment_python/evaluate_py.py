"""HoneyHive's Python SDK's evaluate() over N local datapoints, a task that
waits 50 ms, at the given concurrency; prints the wall time."""
import os, sys, time
from honeyhive import evaluate
n, workers = int(sys.argv[1]), int(sys.argv[2])
def task(datapoint):
    time.sleep(0.05)
    return {"answer": datapoint["inputs"]["q"]}
def exact(outputs, inputs, ground_truth):
    return 1.0 if outputs.get("answer") == (ground_truth or {}).get("answer") else 0.0
data = [{"inputs": {"q": f"q{i}"}, "ground_truth": {"answer": f"q{i}"}} for i in range(n)]
t = time.monotonic()
evaluate(task, dataset=data, evaluators=[exact], name="bench", max_workers=workers, print_results=False, api_key="hh-bench-key", server_url=os.environ["HH_API_URL"])
print(f"python evaluate: {n} datapoints x 50 ms at {workers} workers: {time.monotonic() - t:.2f} s", flush=True)
