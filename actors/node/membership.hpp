#pragma once
// The head's table of worker-node slots: who may join, who holds which slot, who has gone silent.
// Plain logic (no actor, no clock of its own) so admission and loss rules are tested directly; the join
// service actor feeds it requests, heartbeat answers and the time.
//
//   slot 0            slot 1           slot 2          ...  slot nodes-1
//   the head itself   node "a"         (free)
//   ranks [0, k)      ranks [k, 2k)    ranks [2k, 3k)       k = tensor-parallel-size / nodes
#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace troupe {

class Membership {
 public:
  using Clock = std::chrono::steady_clock;

  struct Admission {
    bool accepted = false;
    std::uint32_t slot = 0;
    std::string reason;  // refusals: why
    bool retry = false;  // refusals that may pass later (the group is full now)
    bool duplicate = false;  // refused: the name holds a live slot
  };

  // nodes: every node including the head; backend: the head's; ranks_per_node: what each node hosts.
  Membership(std::uint32_t nodes, std::string backend, std::uint32_t ranks_per_node,
             std::chrono::milliseconds heartbeat_timeout);

  // A join whose proof was already checked (proof_ok). Refusals, in this order: wrong token, backend
  // mismatch, too few devices, the name is already joined (a duplicate is refused, never replaces the
  // live one), the group is full. Accepted: the lowest free slot, seen `now`.
  Admission admit(bool proof_ok, const std::string& name, const std::string& backend, std::uint32_t devices,
                  Clock::time_point now);

  void seen(std::uint32_t slot, Clock::time_point now);  // a heartbeat answer arrived
  // Slots whose last answer is older than the timeout; they are freed (and returned once).
  std::vector<std::uint32_t> expire(Clock::time_point now);
  void release(std::uint32_t slot);  // the connection closed: free it now

  bool live(std::uint32_t slot) const;
  const std::string& name(std::uint32_t slot) const;
  std::vector<std::uint32_t> live_slots() const;
  std::vector<std::uint32_t> missing_slots() const;  // free slots, 1..nodes-1
  // "slot 2 (ranks 4-5)" for messages about missing nodes.
  std::string describe_slot(std::uint32_t slot) const;

 private:
  struct Slot {
    std::string name;  // empty: free
    Clock::time_point last_seen;
  };
  std::vector<Slot> slots_;  // index 0 is the head's and stays unused
  std::string backend_;
  std::uint32_t ranks_per_node_;
  std::chrono::milliseconds timeout_;
};

}  // namespace troupe
