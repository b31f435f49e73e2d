// Errors that reach containerd over gRPC say what failed and why, never a
// host path; a full disk is RESOURCE_EXHAUSTED (mover spec, "gRPC error mapping").
#include "snapshotter/errno_status.h"

#include <catch2/catch.hpp>
#include <cerrno>
#include <cstring>
#include <string>

#include "snapshotter/fs_ops.h"
#include "snapshotter/snapshots_service.h"
#include "test/unit/temp_dir.h"

namespace ndocker {

TEST_CASE("ErrnoStatus says what failed and why, without the path", "[errno_status]") {
  absl::Status st = ErrnoStatus(EIO, "create snapshot directory", "/srv/secret/nd/snapshots/7");
  CHECK(st.code() == absl::StatusCode::kInternal);
  CHECK(st.message() == std::string("create snapshot directory: ") + std::strerror(EIO));
  CHECK(st.message().find("/srv/secret") == absl::string_view::npos);
  CHECK(ErrnoStatus(EACCES, "open").message() == std::string("open: ") + std::strerror(EACCES));
  errno = ENOENT;
  CHECK(LastErrnoStatus("stat", "/x/y").message() == std::string("stat: ") + std::strerror(ENOENT));
  CHECK(LastErrnoStatus("stat").code() == absl::StatusCode::kInternal);
}

TEST_CASE("ENOSPC and EDQUOT are ResourceExhausted", "[errno_status]") {
  absl::Status nospc = ErrnoStatus(ENOSPC, "create snapshot directory", "/mnt/fast/snapshots/7");
  CHECK(nospc.code() == absl::StatusCode::kResourceExhausted);
  CHECK(nospc.message() == "create snapshot directory: No space left on device");
  CHECK(ErrnoStatus(EDQUOT, "write").code() == absl::StatusCode::kResourceExhausted);
  CHECK(ErrnoStatus(EROFS, "write").code() == absl::StatusCode::kInternal);
  CHECK(ErrnoStatus(ENOMEM, "write").code() == absl::StatusCode::kInternal);
}

TEST_CASE("fs_ops errors carry no host path", "[errno_status]") {
  testing::TempDir dir;
  absl::Status st = MakeDir(dir / "missing/parent/child", 0755);
  REQUIRE_FALSE(st.ok());
  CHECK(st.message().find(dir.path()) == absl::string_view::npos);
  CHECK(st.message().find("mkdir") != absl::string_view::npos);
  auto tmp = MakeTempDir(dir / "missing", "x-");
  REQUIRE_FALSE(tmp.ok());
  CHECK(tmp.status().message().find(dir.path()) == absl::string_view::npos);
}

TEST_CASE("ToGrpcStatus keeps the code: ResourceExhausted is RESOURCE_EXHAUSTED", "[errno_status]") {
  CHECK(ToGrpcStatus(absl::OkStatus()).ok());
  grpc::Status full = ToGrpcStatus(ErrnoStatus(ENOSPC, "copy: write data"));
  CHECK(full.error_code() == grpc::StatusCode::RESOURCE_EXHAUSTED);
  CHECK(full.error_message() == "copy: write data: No space left on device");
  CHECK(ToGrpcStatus(ErrnoStatus(EIO, "x")).error_code() == grpc::StatusCode::INTERNAL);
  CHECK(ToGrpcStatus(absl::NotFoundError("n")).error_code() == grpc::StatusCode::NOT_FOUND);
  CHECK(ToGrpcStatus(absl::FailedPreconditionError("f")).error_code() ==
        grpc::StatusCode::FAILED_PRECONDITION);
  CHECK(ToGrpcStatus(absl::AlreadyExistsError("a")).error_code() == grpc::StatusCode::ALREADY_EXISTS);
  CHECK(ToGrpcStatus(absl::InvalidArgumentError("i")).error_code() ==
        grpc::StatusCode::INVALID_ARGUMENT);
  CHECK(ToGrpcStatus(absl::UnimplementedError("u")).error_code() == grpc::StatusCode::UNIMPLEMENTED);
}

}  // namespace ndocker
