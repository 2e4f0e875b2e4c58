/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* Socket-level load balancing and authorization policy: cgroup sock_addr hooks, and sock_release
 * for connection counts. Each hook is a thin wrapper around lib/sock_addr.h. All of them fail
 * open: a call we cannot translate proceeds unchanged unless policy denies it (lib/policy.h).
 * cgroup_skb enforces policy at the destination and records which local workload opened a flow. The
 * same object tracks the connections the connect hooks translated (sockops, lib/conn_track.h) and
 * times their requests (cgroup_skb, lib/request_latency.h); those only observe. One cgroup_skb
 * program per direction runs both packet features (lib/cgroup_skb.h). */
#include "lib/sock_addr.h"

#include <bpf/bpf_helpers.h>

#include "lib/cgroup_skb.h"
#include "vmlinux.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

SEC("cgroup/connect4")
int sm_connect4(struct bpf_sock_addr *ctx) { return sm_sock_outbound(ctx, false, SM_CALL_CONNECT); }

SEC("cgroup/connect6")
int sm_connect6(struct bpf_sock_addr *ctx) { return sm_sock_outbound(ctx, true, SM_CALL_CONNECT); }

SEC("cgroup/sendmsg4")
int sm_sendmsg4(struct bpf_sock_addr *ctx) { return sm_sock_outbound(ctx, false, SM_CALL_SENDMSG); }

SEC("cgroup/sendmsg6")
int sm_sendmsg6(struct bpf_sock_addr *ctx) { return sm_sock_outbound(ctx, true, SM_CALL_SENDMSG); }

SEC("cgroup/recvmsg4")
int sm_recvmsg4(struct bpf_sock_addr *ctx) {
  return sm_sock_reverse(ctx, false, SM_CNT_RECVMSG_REVNAT);
}

SEC("cgroup/recvmsg6")
int sm_recvmsg6(struct bpf_sock_addr *ctx) {
  return sm_sock_reverse(ctx, true, SM_CNT_RECVMSG_REVNAT);
}

SEC("cgroup/getpeername4")
int sm_getpeername4(struct bpf_sock_addr *ctx) {
  return sm_sock_reverse(ctx, false, SM_CNT_PEERNAME_REVNAT);
}

SEC("cgroup/getpeername6")
int sm_getpeername6(struct bpf_sock_addr *ctx) {
  return sm_sock_reverse(ctx, true, SM_CNT_PEERNAME_REVNAT);
}

SEC("cgroup/sock_release")
int sm_sock_release(struct bpf_sock *sk) { return sm_sock_released(sk); }

SEC("sockops")
int sm_conn_sockops(struct bpf_sock_ops *ops) { return sm_conn_track(ops); }

SEC("cgroup_skb/egress")
int sm_skb_egress(struct __sk_buff *skb) { return sm_cgroup_skb_egress(skb); }

SEC("cgroup_skb/ingress")
int sm_skb_ingress(struct __sk_buff *skb) { return sm_cgroup_skb_ingress(skb); }
