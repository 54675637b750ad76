// Benchmark trial that does nothing: what it costs is the search's own overhead.
export default function train() {
  return 0;
}
