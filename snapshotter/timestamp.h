// absl::Time <-> protobuf Timestamp (seconds, nanos) without loss, including
// the Go zero time (0001-01-01) that containerd 1.6 sends in Update requests.
#pragma once

#include <cstdint>

#include "absl/time/time.h"

namespace ndocker {

inline void SplitTime(absl::Time t, int64_t* seconds, int32_t* nanos) {
  // Floor division keeps nanos in [0, 1e9) before 1970, as protobuf requires.
  absl::Duration rem;
  *seconds = absl::IDivDuration(t - absl::UnixEpoch(), absl::Seconds(1), &rem);
  if (rem < absl::ZeroDuration()) {
    *seconds -= 1;
    rem += absl::Seconds(1);
  }
  *nanos = static_cast<int32_t>(absl::ToInt64Nanoseconds(rem));
}

inline absl::Time JoinTime(int64_t seconds, int32_t nanos) {
  return absl::FromUnixSeconds(seconds) + absl::Nanoseconds(nanos);
}

}  // namespace ndocker
