/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* The context of the sm_lb_test program (lb_select_test.bpf.c), shared with its C++ driver
 * (tests/bpf/lb_select_test.cc). A syscall program's context is a plain buffer that
 * BPF_PROG_TEST_RUN copies in from ctx_in and back out to ctx_in, so this struct is both the
 * test's input and its output. Test-only: nothing here is part of the datapath ABI. */
#ifndef SOCKMESH_BPF_TESTS_LB_SELECT_TEST_H_
#define SOCKMESH_BPF_TESTS_LB_SELECT_TEST_H_

#ifdef __bpf__
/* sockmesh/abi.h takes __u32 and friends from vmlinux.h on the BPF side. */
#include "vmlinux.h"
#endif
#include "sockmesh/abi.h"

/* sm_lb_select()'s results as plain numbers for C++, which cannot include lib/lb.h. The test
 * program asserts that they equal enum sm_select_result. */
#define SM_LB_TEST_NOT_SERVICE 0
#define SM_LB_TEST_OK 1
#define SM_LB_TEST_NO_BACKEND 2
#define SM_LB_TEST_INCONSISTENT 3
#define SM_LB_TEST_OVER_LIMIT 4

/* One call of sm_lb_select(). The sm_flow fields are spelled out because struct sm_flow lives in
 * lib/lb.h; the program rebuilds it. */
struct sm_lb_test_ctx {
  /* In. */
  struct sm_svc_key key; /* the frontend dialed; addresses and port in network order */
  __u8 pad0[4];          /* aligns netns_cookie */
  __u64 netns_cookie;    /* sm_flow.netns_cookie: the affinity client */
  __u32 flow_hash;       /* sm_flow.hash: the Maglev key */
  __u32 rand;            /* what SM_GET_PRANDOM() returns during this run */
  __u64 now_ns;          /* what SM_KTIME_NS() returns during this run, nanoseconds */
  /* Out. */
  struct sm_backend out; /* the chosen backend when result is SM_LB_TEST_OK, else zero */
  __s32 result;          /* enum sm_select_result */
  __u8 pad1[4];
  /* In: sm_flow.track (1 = a TCP connect that takes a connection count). */
  __u32 track;
  /* Out: the backend whose count the call took (sm_conn_ref.backend_id), 0 = none. */
  __u32 held_backend_id;
};

SM_STATIC_ASSERT(sizeof(struct sm_lb_test_ctx) == 88, "sm_lb_test_ctx layout");

#endif /* SOCKMESH_BPF_TESTS_LB_SELECT_TEST_H_ */
