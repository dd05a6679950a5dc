"""Data-parallel runs: several devices or machines train one model in step — the strategies,
the cluster (TF_CONFIG, peers, the stop vote) and `segbench launch`'s local workers."""
