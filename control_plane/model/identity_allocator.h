// SPDX-License-Identifier: Apache-2.0
// Numbers principals for the datapath. Every node must agree on the numbers (they are in the
// streamed model), and a number must not move while its principal exists, or policy entries and
// the kernel's IP -> identity map would briefly mean someone else.
//
// The number is a hash of the principal text (FNV-1a 64, folded into [kFirstAllocatedIdentity,
// kIdentitySpace)), probing upward to the next free number on a collision. Within one control-plane
// run a principal keeps its number while it exists (`previous`), whatever else is added or
// removed. Across restarts the hash gives the same numbers without any stored state; only two
// principals whose hashes collide can swap numbers then (one in ~16.7 million per pair; a
// restart sends every agent a full snapshot, so agents follow the new numbers).
#ifndef SOCKMESH_CONTROL_PLANE_MODEL_IDENTITY_ALLOCATOR_H_
#define SOCKMESH_CONTROL_PLANE_MODEL_IDENTITY_ALLOCATOR_H_

#include <cstdint>
#include <map>
#include <set>
#include <string>
#include <string_view>

namespace sockmesh::model {

// Where a principal's number lands when nothing collides with it.
uint32_t PreferredIdentity(std::string_view principal);

// Numbers for `principals`: each keeps its number from `previous` when it has one there; new ones
// take PreferredIdentity or the next free number above it (wrapping inside the allocated range),
// in principal order so the outcome does not depend on the order of the input.
std::map<std::string, uint32_t> AllocateIdentities(const std::set<std::string>& principals,
                                                   const std::map<std::string, uint32_t>& previous);

}  // namespace sockmesh::model

#endif  // SOCKMESH_CONTROL_PLANE_MODEL_IDENTITY_ALLOCATOR_H_
