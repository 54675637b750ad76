"""What runs in the Spark driver: the one job envelope (envelope.py) and each kind's middle (train:
train_job.py and lifecycle.py; search: search_rounds.py; predict: predict_job.py), picked by
submit.py; the specs they read, and the attempts, slots, heartbeats and executors they manage."""
