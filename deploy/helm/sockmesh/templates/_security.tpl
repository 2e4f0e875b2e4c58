{{/* SPDX-License-Identifier: Apache-2.0 */}}
{{/*
The agent runs as root (uid 0) with only these capabilities; everything else is dropped:
  BPF          create maps, load programs, pin and open pinned objects (bpf(2)).
  PERFMON      the datapath's programs read kernel memory through helpers that the verifier allows
               only with CAP_PERFMON (pointer arithmetic and probe reads in CO-RE code).
  NET_ADMIN    load and attach cgroup sock_addr, sockops and sk_msg programs (networking program
               types need it on top of CAP_BPF).
  SYS_ADMIN    look up programs and links by id (bpf_prog_get_fd_by_id: adopting and cleaning up
               what an earlier agent attached), and move the short-circuit probe's child into the
               mesh cgroup through the host's cgroup tree.
  SYS_RESOURCE raise RLIMIT_MEMLOCK, which BPF maps are charged to on kernels that do not account
               BPF memory to the memory cgroup (before 5.11); harmless where it is not needed.
Root is needed because bpffs pins and the host's cgroup files are owned by root; capabilities do not
replace file ownership here without also granting DAC_OVERRIDE. seccomp is Unconfined because the
runtime's default profile may deny bpf(2) and perf_event_open(2) to a container without SYS_ADMIN.
tests/deploy run the agent binary with exactly this set (setpriv --bounding-set) to check it works.
*/}}
{{- define "sockmesh.agentSecurityContext" -}}
privileged: false
runAsUser: 0
runAsNonRoot: false
readOnlyRootFilesystem: true
capabilities:
  drop: [ALL]
  add: [BPF, PERFMON, NET_ADMIN, SYS_ADMIN, SYS_RESOURCE]
seccompProfile:
  type: Unconfined
{{- end -}}
