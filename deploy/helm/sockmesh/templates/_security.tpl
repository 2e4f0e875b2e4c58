{{/* SPDX-License-Identifier: Apache-2.0 */}}
{{/*
The agent runs as root (uid 0), not privileged, with every capability dropped except:
  BPF        create maps, load programs, pin and open pinned objects (bpf(2)).
  NET_ADMIN  load and attach the networking program types: cgroup sock_addr and sockops, sk_msg,
             and the sockhash the short-circuit uses.
  SYS_ADMIN  bpf_prog_get_fd_by_id, with which --short-circuit=off and the uninstall step detach
             the sk_msg program from a sockhash an earlier agent used (without it the program is
             only unpinned and lingers until the last socket closes).
  PERFMON    the kernel metrics' programs (connection tracker, request timer): without PERFMON
             or SYS_ADMIN the verifier refuses them (EACCES).
Measured with SOCKMESH_AGENT_CAPS=... tests/deploy/agent_daemonset_test.sh on Linux 6.18:
BPF + NET_ADMIN + PERFMON, and NET_ADMIN + SYS_ADMIN, start, attach, follow the control plane,
restart and clean up; BPF + NET_ADMIN fails to load (EACCES), BPF + PERFMON too (EPERM).
SYS_RESOURCE is not granted: since Linux 5.11 BPF memory is charged to the memory cgroup, not
RLIMIT_MEMLOCK, and the datapath needs 5.18+ anyway.
Root is needed because the bpffs pins and the host's cgroup files belong to root; capabilities do
not replace file ownership here without DAC_OVERRIDE. seccomp is Unconfined because the runtime's
default profile may deny bpf(2) and perf_event_open(2) to a container without SYS_ADMIN.
tests/deploy run the agent binary with exactly this set (setpriv --bounding-set).
*/}}
{{- define "sockmesh.agentSecurityContext" -}}
privileged: false
runAsUser: 0
runAsNonRoot: false
readOnlyRootFilesystem: true
capabilities:
  drop: [ALL]
  add: [BPF, NET_ADMIN, SYS_ADMIN, PERFMON]
seccompProfile:
  type: Unconfined
{{- end -}}
