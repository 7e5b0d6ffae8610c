#include "actors/node/membership.hpp"

namespace troupe {

Membership::Membership(std::uint32_t nodes, std::string backend, std::uint32_t ranks_per_node,
                       std::chrono::milliseconds heartbeat_timeout)
  : slots_(nodes), backend_(std::move(backend)), ranks_per_node_(ranks_per_node), timeout_(heartbeat_timeout) {}

Membership::Admission Membership::admit(bool proof_ok, const std::string& name, const std::string& backend,
                                        std::uint32_t devices, Clock::time_point now) {
  Admission a;
  if (!proof_ok) {
    a.reason = "wrong join token";
    return a;
  }
  if (name.empty()) {
    a.reason = "the node name is empty";
    return a;
  }
  if (backend != backend_) {
    a.reason = "the node runs the '" + backend + "' backend, the head '" + backend_ + "'";
    return a;
  }
  if (devices != 0 && devices < ranks_per_node_) {
    a.reason = "the node has " + std::to_string(devices) + " devices, each node hosts " +
               std::to_string(ranks_per_node_) + " ranks";
    return a;
  }
  for (std::uint32_t s = 1; s < slots_.size(); ++s) {
    if (slots_[s].name == name) {
      a.reason = "a node named '" + name + "' is already joined (" + describe_slot(s) + ")";
      a.duplicate = true;
      return a;
    }
  }
  for (std::uint32_t s = 1; s < slots_.size(); ++s) {
    if (!slots_[s].name.empty()) continue;
    slots_[s] = {name, now};
    a.accepted = true;
    a.slot = s;
    return a;
  }
  a.reason = "the group is full (" + std::to_string(slots_.size()) + " nodes, the head included)";
  a.retry = true;
  return a;
}

void Membership::seen(std::uint32_t slot, Clock::time_point now) {
  if (live(slot)) slots_[slot].last_seen = now;
}

std::vector<std::uint32_t> Membership::expire(Clock::time_point now) {
  std::vector<std::uint32_t> out;
  for (std::uint32_t s = 1; s < slots_.size(); ++s) {
    if (slots_[s].name.empty() || now - slots_[s].last_seen <= timeout_) continue;
    out.push_back(s);
    release(s);
  }
  return out;
}

void Membership::release(std::uint32_t slot) {
  if (slot > 0 && slot < slots_.size()) slots_[slot] = {};
}

bool Membership::live(std::uint32_t slot) const {
  return slot > 0 && slot < slots_.size() && !slots_[slot].name.empty();
}

const std::string& Membership::name(std::uint32_t slot) const { return slots_.at(slot).name; }

std::vector<std::uint32_t> Membership::live_slots() const {
  std::vector<std::uint32_t> out;
  for (std::uint32_t s = 1; s < slots_.size(); ++s)
    if (live(s)) out.push_back(s);
  return out;
}

std::vector<std::uint32_t> Membership::missing_slots() const {
  std::vector<std::uint32_t> out;
  for (std::uint32_t s = 1; s < slots_.size(); ++s)
    if (!live(s)) out.push_back(s);
  return out;
}

std::string Membership::describe_slot(std::uint32_t slot) const {
  std::uint32_t first = slot * ranks_per_node_, last = first + ranks_per_node_ - 1;
  std::string ranks = first == last ? "rank " + std::to_string(first)
                                    : "ranks " + std::to_string(first) + "-" + std::to_string(last);
  return "slot " + std::to_string(slot) + " (" + ranks + ")";
}

}  // namespace troupe
