// SPDX-License-Identifier: Apache-2.0
#include "userspace/agent/datapath.h"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <set>

#include "absl/strings/str_cat.h"
#include "sm_short_circuit.skel.h"
#include "sm_sock_lb.skel.h"
#include "userspace/agent/cgroup.h"
#include "userspace/log/log.h"
#include "userspace/sys/errno_status.h"

namespace sockmesh::agent {
namespace {

namespace fs = std::filesystem;

constexpr char kLog[] = "datapath";

std::string PinPath(const std::string& dir, const char* name) { return dir + "/" + name; }

// The size to load a map with: an explicit request wins; otherwise a pinned map keeps its size so
// that libbpf can reuse it (it refuses maps whose max_entries differ).
absl::Status ChooseMapSize(bpf_map* map, uint32_t requested, const std::string& pin_path) {
  uint32_t size = requested;
  if (size == 0 && fs::exists(pin_path)) {
    absl::StatusOr<sys::UniqueFd> fd = bpf::OpenPinned(pin_path);
    if (!fd.ok()) return fd.status();
    absl::StatusOr<bpf::MapInfo> info = bpf::GetMapInfo(fd->get());
    if (!info.ok()) return info.status();
    size = info->max_entries;
  }
  if (size == 0) return absl::OkStatus();
  int err = bpf_map__set_max_entries(map, size);
  if (err) return sys::ErrnoToStatus(err, absl::StrCat("resize map ", bpf_map__name(map)));
  return absl::OkStatus();
}

// The cgroup a pinned link is attached to, so a restart with another --cgroup is refused instead
// of silently leaving the old cgroup balanced.
absl::StatusOr<uint64_t> LinkCgroupId(int link_fd) {
  bpf_link_info info{};
  uint32_t len = sizeof(info);
  if (bpf_obj_get_info_by_fd(link_fd, &info, &len) != 0) {
    return sys::ErrnoToStatus(errno, "link info");
  }
  if (info.type != BPF_LINK_TYPE_CGROUP) {
    return absl::FailedPreconditionError("pinned link is not a cgroup link");
  }
  return info.cgroup.cgroup_id;
}

}  // namespace

void Datapath::SkeletonDeleter::operator()(sm_sock_lb* skel) const { sm_sock_lb__destroy(skel); }
void Datapath::SkeletonDeleter::operator()(sm_short_circuit* skel) const {
  sm_short_circuit__destroy(skel);
}
void Datapath::LinkDeleter::operator()(bpf_link* link) const { bpf_link__destroy(link); }

absl::StatusOr<std::unique_ptr<Datapath>> Datapath::Start(const DatapathOptions& options) {
  if (absl::Status s = ValidateInstanceName(options.instance); !s.ok()) return s;
  if (absl::Status s = EnsureBpffs(options.bpffs_root); !s.ok()) return s;
  PinLayout layout = MakePinLayout(options.bpffs_root, options.instance);
  std::error_code ec;
  fs::create_directories(layout.maps_dir, ec);
  fs::create_directories(layout.links_dir, ec);
  if (ec) return sys::ErrnoToStatus(ec.value(), absl::StrCat("create ", layout.instance_dir));

  std::unique_ptr<Datapath> dp(new Datapath());
  dp->bpffs_root_ = options.bpffs_root;
  dp->instance_ = options.instance;
  if (absl::Status s = dp->Load(options, layout); !s.ok()) return s;
  if (absl::Status s = dp->AttachAll(options, layout); !s.ok()) return s;
  if (options.short_circuit) {
    if (absl::Status s = dp->StartShortCircuit(options, layout); !s.ok()) return s;
  } else {
    absl::StatusOr<bool> detached = DetachShortCircuit(options.bpffs_root, options.instance);
    if (!detached.ok()) return detached.status();
    dp->report_.short_circuit_detached = *detached;
  }
  return dp;
}

ServiceMaps ServiceMapsOf(DatapathMaps& m) {
  return ServiceMaps{.services = &m.services,
                     .backends = &m.backends,
                     .lut = &m.lut,
                     .conns = &m.conns,
                     .outlier_config = &m.outlier_config,
                     .outliers = &m.outliers,
                     .ejections = &m.ejections};
}

absl::Status Datapath::Load(const DatapathOptions& options, const PinLayout& layout) {
  skel_.reset(sm_sock_lb__open());
  if (!skel_) return sys::ErrnoToStatus(errno, "open BPF object sm_sock_lb");

  struct Sized {
    bpf_map* map;
    uint32_t requested;
  };
  const Sized sized[] = {{skel_->maps.sm_svc_v1, options.sizes.services},
                         {skel_->maps.sm_be_v1, options.sizes.backends},
                         {skel_->maps.sm_lut_v1, options.sizes.lut},
                         {skel_->maps.sm_aff_v1, options.sizes.affinity},
                         {skel_->maps.sm_revnat_v1, options.sizes.revnat},
                         {skel_->maps.sm_sock_vip_v2, 0},
                         {skel_->maps.sm_be_conns_v1, 0},
                         {skel_->maps.sm_ip_identity_v1, 0},
                         {skel_->maps.sm_cgroup_identity_v1, 0},
                         {skel_->maps.sm_counters_v1, 0},
                         {skel_->maps.sm_conn_v1, 0},
                         {skel_->maps.sm_conn_stats_v1, 0},
                         {skel_->maps.sm_policy_rows_v1, 0},
                         {skel_->maps.sm_ip_policy_endpoint_v1, 0},
                         {skel_->maps.sm_cgroup_policy_endpoint_v1, 0},
                         {skel_->maps.sm_policy_decisions_v1, 0},
                         {skel_->maps.sm_flow_identity_v1, 0},
                         {skel_->maps.sm_flow_gate_v1, 0},
                         {skel_->maps.sm_policy_denials_v1, 0},
                         {skel_->maps.sm_outlier_cfg_v1, 0},
                         {skel_->maps.sm_be_outlier_v1, 0},
                         {skel_->maps.sm_svc_ejected_v1, 0}};
  // Declared in lib/maps.h for the short-circuit object only; sm_sock_lb's programs never use it.
  if (int err = bpf_map__set_autocreate(skel_->maps.sm_sock_pairs_v1, false); err) {
    return sys::ErrnoToStatus(err, "skip map sm_sock_pairs_v1");
  }
  for (const Sized& m : sized) {
    std::string pin = PinPath(layout.maps_dir, bpf_map__name(m.map));
    if (fs::exists(pin)) report_.reused_maps.push_back(bpf_map__name(m.map));
    if (absl::Status s = ChooseMapSize(m.map, m.requested, pin); !s.ok()) return s;
    // libbpf reuses a compatible pinned map and pins the ones it creates.
    if (int err = bpf_map__set_pin_path(m.map, pin.c_str()); err) {
      return sys::ErrnoToStatus(err, absl::StrCat("set pin path ", pin));
    }
  }
  if (int err = sm_sock_lb__load(skel_.get()); err) {
    return absl::Status(sys::ErrnoToStatus(err, "load BPF programs").code(),
                        absl::StrCat("load BPF programs: ", std::strerror(-err),
                                     " (a pinned map with another layout or size needs "
                                     "`sockmesh-agent --cleanup --instance ",
                                     options.instance, "` first; libbpf's log above says which)"));
  }

  auto svc = bpf::TypedMap<sm_svc_key, sm_svc>::FromSkeleton(skel_->maps.sm_svc_v1);
  auto be = bpf::TypedMap<sm_be_key, sm_backend>::FromSkeleton(skel_->maps.sm_be_v1);
  auto lut = bpf::TypedMap<sm_lut_key, uint32_t>::FromSkeleton(skel_->maps.sm_lut_v1);
  auto aff = bpf::TypedMap<sm_aff_key, sm_aff_val>::FromSkeleton(skel_->maps.sm_aff_v1);
  auto rnat = bpf::TypedMap<sm_revnat_key, sm_revnat_val>::FromSkeleton(skel_->maps.sm_revnat_v1);
  auto conns = bpf::TypedMap<sm_be_conn_key, uint64_t>::FromSkeleton(skel_->maps.sm_be_conns_v1);
  auto ip_id =
      bpf::TypedMap<sm_ip_identity_key, sm_identity>::FromSkeleton(skel_->maps.sm_ip_identity_v1);
  auto cg_id =
      bpf::TypedMap<uint64_t, sm_identity>::FromSkeleton(skel_->maps.sm_cgroup_identity_v1);
  auto rows =
      bpf::TypedMap<sm_policy_row_key, sm_policy_row>::FromSkeleton(skel_->maps.sm_policy_rows_v1);
  auto ip_ep = bpf::TypedMap<sm_ip_identity_key, sm_policy_endpoint>::FromSkeleton(
      skel_->maps.sm_ip_policy_endpoint_v1);
  auto cg_ep = bpf::TypedMap<uint64_t, sm_policy_endpoint>::FromSkeleton(
      skel_->maps.sm_cgroup_policy_endpoint_v1);
  auto outlier_cfg =
      bpf::TypedMap<uint32_t, sm_outlier_cfg>::FromSkeleton(skel_->maps.sm_outlier_cfg_v1);
  auto outliers =
      bpf::TypedMap<sm_be_conn_key, sm_be_outlier>::FromSkeleton(skel_->maps.sm_be_outlier_v1);
  auto ejections =
      bpf::TypedMap<uint32_t, sm_svc_ejections>::FromSkeleton(skel_->maps.sm_svc_ejected_v1);
  auto flow_gate = bpf::TypedMap<uint32_t, uint32_t>::FromSkeleton(skel_->maps.sm_flow_gate_v1);
  for (const absl::Status& s :
       {svc.status(), be.status(), lut.status(), aff.status(), rnat.status(), conns.status(),
        ip_id.status(), cg_id.status(), rows.status(), ip_ep.status(), cg_ep.status(),
        outlier_cfg.status(), outliers.status(), ejections.status(), flow_gate.status()}) {
    if (!s.ok()) return s;
  }
  maps_ = std::make_unique<DatapathMaps>(DatapathMaps{
      .services = *std::move(svc),
      .backends = *std::move(be),
      .lut = *std::move(lut),
      .affinity = *std::move(aff),
      .revnat = *std::move(rnat),
      .conns = *std::move(conns),
      .ip_identity = *std::move(ip_id),
      .cgroup_identity = *std::move(cg_id),
      .policy_rows = *std::move(rows),
      .ip_policy_endpoint = *std::move(ip_ep),
      .cgroup_policy_endpoint = *std::move(cg_ep),
      .policy_decisions_fd = bpf_map__fd(skel_->maps.sm_policy_decisions_v1),
      .policy_denials_fd = bpf_map__fd(skel_->maps.sm_policy_denials_v1),
      .outlier_config = *std::move(outlier_cfg),
      .outliers = *std::move(outliers),
      .ejections = *std::move(ejections),
      .flow_gate = *std::move(flow_gate),
      .counters_fd = bpf_map__fd(skel_->maps.sm_counters_v1),
      .conn_stats_fd = bpf_map__fd(skel_->maps.sm_conn_stats_v1),
  });
  return absl::OkStatus();
}

absl::Status Datapath::AttachAll(const DatapathOptions& options, const PinLayout& layout) {
  absl::StatusOr<uint64_t> cgroup_id = CgroupId(options.cgroup_path);
  if (!cgroup_id.ok()) return cgroup_id.status();
  absl::StatusOr<sys::UniqueFd> cgroup = OpenCgroup(options.cgroup_path);
  if (!cgroup.ok()) return cgroup.status();

  bpf_program* prog;
  bpf_object__for_each_program(prog, skel_->obj) {
    absl::StatusOr<LinkPtr> link =
        AttachCgroupProgram(prog, options, layout, cgroup->get(), *cgroup_id);
    if (!link.ok()) return link.status();
    links_.push_back(*std::move(link));
  }
  return RemoveStaleLinks(layout);
}

absl::Status Datapath::RemoveStaleLinks(const PinLayout& layout) {
  std::set<std::string> current = {kSockopsLink};
  bpf_program* prog;
  bpf_object__for_each_program(prog, skel_->obj) current.insert(bpf_program__name(prog));
  std::error_code ec;
  std::vector<std::string> stale;
  for (const auto& entry : fs::directory_iterator(layout.links_dir, ec)) {
    std::string name = entry.path().filename().string();
    if (!current.contains(name)) stale.push_back(name);
  }
  if (ec) return sys::ErrnoToStatus(ec.value(), absl::StrCat("list ", layout.links_dir));
  std::sort(stale.begin(), stale.end());
  for (const std::string& name : stale) {
    std::string pin = PinPath(layout.links_dir, name.c_str());
    absl::StatusOr<sys::UniqueFd> link = bpf::OpenPinned(pin);
    if (!link.ok()) return link.status();
    // Explicit, as in CleanupInstance: another process may still hold the link's fd.
    if (bpf_link_detach(link->get()) != 0 && errno != ENOLINK) {
      return sys::ErrnoToStatus(errno, absl::StrCat("detach stale link ", pin));
    }
    if (::unlink(pin.c_str()) != 0) {
      return sys::ErrnoToStatus(errno, absl::StrCat("unpin stale link ", pin));
    }
    report_.removed.push_back(name);
  }
  return absl::OkStatus();
}

absl::StatusOr<Datapath::LinkPtr> Datapath::AttachCgroupProgram(bpf_program* prog,
                                                                const DatapathOptions& options,
                                                                const PinLayout& layout,
                                                                int cgroup_fd, uint64_t cgroup_id) {
  std::string name = bpf_program__name(prog);
  std::string pin = PinPath(layout.links_dir, name.c_str());
  if (fs::exists(pin)) {
    LinkPtr link(bpf_link__open(pin.c_str()));
    if (!link) return sys::ErrnoToStatus(errno, absl::StrCat("open pinned link ", pin));
    absl::StatusOr<uint64_t> attached_to = LinkCgroupId(bpf_link__fd(link.get()));
    if (!attached_to.ok()) return attached_to.status();
    if (*attached_to != cgroup_id) {
      return absl::FailedPreconditionError(absl::StrCat(
          "instance \"", options.instance, "\" is attached to cgroup id ", *attached_to, ", not ",
          options.cgroup_path, " (id ", cgroup_id, "); run `sockmesh-agent --cleanup --instance ",
          options.instance, "` first"));
    }
    // Replaces the program in place: the cgroup never runs without one.
    if (int err = bpf_link__update_program(link.get(), prog); err) {
      return sys::ErrnoToStatus(err, absl::StrCat("update pinned link ", pin));
    }
    report_.adopted.push_back(name);
    return link;
  }
  LinkPtr link(bpf_program__attach_cgroup(prog, cgroup_fd));
  if (!link) {
    return sys::ErrnoToStatus(errno, absl::StrCat("attach ", name, " to ", options.cgroup_path));
  }
  if (int err = bpf_link__pin(link.get(), pin.c_str()); err) {
    return sys::ErrnoToStatus(err, absl::StrCat("pin link ", pin));
  }
  report_.attached.push_back(name);
  return link;
}

absl::Status Datapath::StartShortCircuit(const DatapathOptions& options, const PinLayout& layout) {
  sc_skel_.reset(sm_short_circuit__open());
  if (!sc_skel_) return sys::ErrnoToStatus(errno, "open BPF object sm_short_circuit");
  // The object sees every map of lib/maps.h but uses two: the sockhash, and the counters that it
  // shares with sm_sock_lb through the pin (already created by Load()).
  bpf_map* map;
  bpf_object__for_each_map(map, sc_skel_->obj) {
    if (bpf_map__is_internal(map)) continue;
    if (map != sc_skel_->maps.sm_sock_pairs_v1 && map != sc_skel_->maps.sm_counters_v1) {
      if (int err = bpf_map__set_autocreate(map, false); err) {
        return sys::ErrnoToStatus(err, absl::StrCat("skip map ", bpf_map__name(map)));
      }
      continue;
    }
    std::string pin = PinPath(layout.maps_dir, bpf_map__name(map));
    if (absl::Status s = ChooseMapSize(map, 0, pin); !s.ok()) return s;
    if (int err = bpf_map__set_pin_path(map, pin.c_str()); err) {
      return sys::ErrnoToStatus(err, absl::StrCat("set pin path ", pin));
    }
  }
  if (int err = sm_short_circuit__load(sc_skel_.get()); err) {
    return sys::ErrnoToStatus(err, "load BPF object sm_short_circuit");
  }
  absl::StatusOr<uint64_t> cgroup_id = CgroupId(options.cgroup_path);
  if (!cgroup_id.ok()) return cgroup_id.status();
  absl::StatusOr<sys::UniqueFd> cgroup = OpenCgroup(options.cgroup_path);
  if (!cgroup.ok()) return cgroup.status();
  // sk_msg first: a socket that sockops adds must find its verdict program already on the map.
  // The attachment belongs to the pinned map; attaching again replaces the previous program.
  if (bpf_prog_attach(bpf_program__fd(sc_skel_->progs.sm_skmsg),
                      bpf_map__fd(sc_skel_->maps.sm_sock_pairs_v1), BPF_SK_MSG_VERDICT, 0) != 0) {
    return sys::ErrnoToStatus(errno, "attach sk_msg program to sm_sock_pairs_v1");
  }
  absl::StatusOr<LinkPtr> link =
      AttachCgroupProgram(sc_skel_->progs.sm_sockops, options, layout, cgroup->get(), *cgroup_id);
  if (!link.ok()) return link.status();
  sc_link_ = *std::move(link);
  return absl::OkStatus();
}

absl::StatusOr<size_t> Datapath::LoadBalancerProgramsAttached() const {
  size_t attached = 0;
  for (const LinkPtr& link : links_) {
    absl::StatusOr<uint64_t> cgroup = LinkCgroupId(bpf_link__fd(link.get()));
    if (!cgroup.ok()) return cgroup.status();
    if (*cgroup != 0) ++attached;
  }
  return attached;
}

int Datapath::sock_pairs_fd() const {
  return sc_skel_ ? bpf_map__fd(sc_skel_->maps.sm_sock_pairs_v1) : -1;
}

absl::Status Datapath::DisableShortCircuit() {
  absl::StatusOr<bool> detached = DetachShortCircuit(bpffs_root_, instance_);
  sc_link_.reset();
  sc_skel_.reset();
  return detached.status();
}

Datapath::~Datapath() = default;

absl::StatusOr<std::vector<uint64_t>> Datapath::ReadCounters() const {
  return bpf::ReadPerCpuCounters(maps_->counters_fd, SM_CNT_MAX);
}

absl::StatusOr<bool> DetachShortCircuit(const std::string& bpffs_root,
                                        const std::string& instance) {
  if (absl::Status s = ValidateInstanceName(instance); !s.ok()) return s;
  PinLayout layout = MakePinLayout(bpffs_root, instance);
  bool found = false;
  std::string link_pin = PinPath(layout.links_dir, kSockopsLink);
  if (fs::exists(link_pin)) {
    found = true;
    absl::StatusOr<sys::UniqueFd> link = bpf::OpenPinned(link_pin);
    if (!link.ok()) return link.status();
    // Explicit: a running agent may still hold the link's fd.
    if (bpf_link_detach(link->get()) != 0 && errno != ENOLINK) {
      return sys::ErrnoToStatus(errno, absl::StrCat("detach ", link_pin));
    }
    if (::unlink(link_pin.c_str()) != 0) {
      return sys::ErrnoToStatus(errno, absl::StrCat("unpin ", link_pin));
    }
  }
  std::string map_pin = PinPath(layout.maps_dir, kSockPairsMap);
  if (fs::exists(map_pin)) {
    found = true;
    absl::StatusOr<sys::UniqueFd> map = bpf::OpenPinned(map_pin);
    if (!map.ok()) return map.status();
    // Detach sk_msg from the map too: the map outlives its pin while an agent holds its fd.
    // BPF_PROG_QUERY on a sockmap needs Linux 5.19; older kernels only get the unpin below.
    uint32_t ids[8];
    uint32_t count = 8;
    uint32_t flags = 0;
    if (bpf_prog_query(map->get(), BPF_SK_MSG_VERDICT, 0, &flags, ids, &count) == 0) {
      for (uint32_t i = 0; i < count && i < 8; ++i) {
        int prog = bpf_prog_get_fd_by_id(ids[i]);
        if (prog < 0) continue;  // already gone
        (void)bpf_prog_detach2(prog, map->get(), BPF_SK_MSG_VERDICT);
        ::close(prog);
      }
    }
    if (::unlink(map_pin.c_str()) != 0) {
      return sys::ErrnoToStatus(errno, absl::StrCat("unpin ", map_pin));
    }
  }
  return found;
}

absl::Status CleanupInstance(const std::string& bpffs_root, const std::string& instance) {
  if (absl::Status s = ValidateInstanceName(instance); !s.ok()) return s;
  if (absl::StatusOr<bool> sc = DetachShortCircuit(bpffs_root, instance); !sc.ok()) {
    return sc.status();
  }
  PinLayout layout = MakePinLayout(bpffs_root, instance);
  std::error_code ec;
  // Detach explicitly: a still-running agent may hold link fds that would outlive the unpin.
  for (const auto& entry : fs::directory_iterator(layout.links_dir, ec)) {
    absl::StatusOr<sys::UniqueFd> link = bpf::OpenPinned(entry.path().string());
    if (!link.ok()) return link.status();
    if (bpf_link_detach(link->get()) != 0 && errno != ENOLINK) {
      return sys::ErrnoToStatus(errno, absl::StrCat("detach ", entry.path().string()));
    }
  }
  return RemovePins(layout);
}

}  // namespace sockmesh::agent
