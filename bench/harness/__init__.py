"""The side-by-side benchmark harness behind `bench/run`.

Data flows one way: `main` parses the options and builds the tools (`tools`), each workload in
`workloads` starts a broker (`brokers`), drives it with librdkafka's `rdkafka_performance`
(`client`) while a `brokers.ProcessMonitor` samples the broker's CPU time and memory, and
returns plain result dictionaries; `results` merges them into a JSON file that survives partial
runs, and `report` turns that file into the console table, the plot and the harness section of
BENCHMARKS.md.
"""
