"""`resolver hitrate`: the cache hit rates an operator's own traffic would get.

One module per job: `wire` (what a DNS message says about its caching), `pairing` (queries
matched with their responses), `trace` (the replayable trace), the readers `pcap`, `dnstap` and
`querylog`, `inputs` (format detection, several files), `simulate` (the bound and the cache
model), `engine_replay` (the same trace through the real `Engine`, to check the model),
`report` (table, JSON, plots) and `progress`.
"""
