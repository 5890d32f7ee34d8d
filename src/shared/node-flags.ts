/**
 * V8 flags the service runs with (`npm start`, bin/pos, `serve --workers` children, the benches). A
 * young generation of 32 MB rather than 16: a request allocates briefly and dies young, and with the
 * default semi-space the scavenges were 11–12 % of the service's CPU under bench:seats; with 32 MB,
 * 5 434 against 4 536 hold requests/s and p99 75 against 117 ms (one run each, seat batches one at a time).
 */
export const SERVICE_NODE_FLAGS = ['--max-semi-space-size=32'];
