#include "lass/pull_session.h"

namespace ndocker::lass {

const char* BlobStateName(BlobState state) {
  switch (state) {
    case BlobState::kWaiting: return "waiting";
    case BlobState::kDownloading: return "downloading";
    case BlobState::kDone: return "done";
  }
  return "unknown";
}

}  // namespace ndocker::lass
