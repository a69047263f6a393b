"""Load tests (locustfile.py, run by locust only) and the autoscaling simulator (autoscale_sim.py)."""
