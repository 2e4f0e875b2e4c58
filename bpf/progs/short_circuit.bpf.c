/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* Same-node short-circuit: a sockops program that tracks established loopback sockets and an
 * sk_msg program that sends straight to the peer socket. One object of its own, so the agent does
 * not load it at all with --no-short-circuit; it shares sm_counters_v1 with sm_sock_lb through the
 * pin. Logic in lib/short_circuit.h. */
#include "lib/short_circuit.h"

#include <bpf/bpf_helpers.h>

#include "vmlinux.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

SEC("sockops")
int sm_sockops(struct bpf_sock_ops *ops) { return sm_sockops_track(ops); }

SEC("sk_msg")
int sm_skmsg(struct sk_msg_md *msg) { return sm_skmsg_redirect(msg); }
