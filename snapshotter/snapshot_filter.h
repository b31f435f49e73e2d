// The fields a List filter can select on a snapshot, as containerd's
// adaptSnapshot exposes them: kind, name, parent, labels.<key>.
#pragma once

#include "snapshotter/filter.h"
#include "snapshotter/types.h"

namespace ndocker {

// The lookup refers to `info`, which must outlive it.
FieldLookup SnapshotFieldLookup(const SnapshotInfo& info);

}  // namespace ndocker
