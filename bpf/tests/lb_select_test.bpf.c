/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* Runs lib/lb.h's sm_lb_select() under BPF_PROG_TEST_RUN. The cgroup sock_addr hooks that call it
 * in production cannot be test-run, so this syscall program includes the same inline logic with
 * the random and clock helpers replaced by values from the context (Cilium's BPF unit tests mock
 * helpers the same way). It uses the production map definitions, so the C++ driver programs them
 * with the agent's own MapSync. */
#include "tests/lb_select_test.h"

#include <bpf/bpf_helpers.h>

#include "vmlinux.h"

/* Set from the context at the start of each run and read by the mocks below. One run is one
 * program invocation on one CPU, so there is no other writer. */
static __u32 sm_test_rand;
static __u64 sm_test_now_ns;

#define SM_GET_PRANDOM() sm_test_rand
#define SM_KTIME_NS() sm_test_now_ns

#include "lib/lb.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

_Static_assert(SM_SELECT_NOT_SERVICE == SM_LB_TEST_NOT_SERVICE, "result codes drifted");
_Static_assert(SM_SELECT_OK == SM_LB_TEST_OK, "result codes drifted");
_Static_assert(SM_SELECT_NO_BACKEND == SM_LB_TEST_NO_BACKEND, "result codes drifted");
_Static_assert(SM_SELECT_INCONSISTENT == SM_LB_TEST_INCONSISTENT, "result codes drifted");
_Static_assert(SM_SELECT_OVER_LIMIT == SM_LB_TEST_OVER_LIMIT, "result codes drifted");

SEC("syscall")
int sm_test_select(struct sm_lb_test_ctx *ctx) {
  /* Map helpers take keys from the stack, not from the context: copy in, run, copy out. */
  struct sm_svc_key key;
  __builtin_memcpy(&key, &ctx->key, sizeof(key));
  struct sm_flow flow = {
      .netns_cookie = ctx->netns_cookie, .hash = ctx->flow_hash, .track = ctx->track};
  sm_test_rand = ctx->rand;
  sm_test_now_ns = ctx->now_ns;

  struct sm_backend out = {};
  struct sm_conn_ref held;
  ctx->result = sm_lb_select(&key, &flow, &out, &held);
  __builtin_memcpy(&ctx->out, &out, sizeof(out));
  ctx->held_backend_id = held.backend_id;
  return 0;
}
