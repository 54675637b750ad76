"""What runs in the Spark executors: the barrier task that bridges to a Node worker (task.py,
node_worker.py, handoff.py), the search task (search_tasks.py), scoring (scoring.py), and what they
find on the executor (the shipped bundle, GPUs, TensorFlow, the runtime)."""
