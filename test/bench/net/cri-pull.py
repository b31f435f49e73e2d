#!/usr/bin/python3
"""A CRI image pull without crictl (not packaged in Debian 12).

    cri-pull.py --address /path/containerd.sock [--remove] [--api v1|v1alpha2] IMAGE...

Calls ImageService.PullImage of containerd's CRI plugin (namespace k8s.io),
so the image is fetched and unpacked *inside containerd* (unlike `ctr image
pull`, which fetches in the ctr process): run containerd in the client
network namespace (net/netns.sh) for the fetch to cross the shaped link.
Plain HTTP needs a registry mirror (or hosts.toml) entry in containerd's
config; see net/README.md. --remove calls RemoveImage instead.

Prints one line per image: "<image> <image_ref> <seconds>". Needs only
python3-grpcio (Debian): the few protobuf messages are encoded by hand.
"""
import argparse
import sys
import time

import grpc


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def _field_bytes(num: int, payload: bytes) -> bytes:
    # wire type 2 (length-delimited)
    return _varint((num << 3) | 2) + _varint(len(payload)) + payload


def _image_spec(image: str) -> bytes:
    return _field_bytes(1, image.encode())  # ImageSpec.image = 1


def pull_request(image: str) -> bytes:
    return _field_bytes(1, _image_spec(image))  # PullImageRequest.image = 1


def remove_request(image: str) -> bytes:
    return _field_bytes(1, _image_spec(image))  # RemoveImageRequest.image = 1


def _read_varint(buf: bytes, i: int):
    shift = n = 0
    while True:
        b = buf[i]
        i += 1
        n |= (b & 0x7F) << shift
        shift += 7
        if not b & 0x80:
            return n, i


def first_string_field(buf: bytes) -> str:
    """PullImageResponse.image_ref = 1 (the only field)."""
    i = 0
    while i < len(buf):
        key, i = _read_varint(buf, i)
        num, wt = key >> 3, key & 7
        if wt == 2:
            ln, i = _read_varint(buf, i)
            if num == 1:
                return buf[i:i + ln].decode()
            i += ln
        elif wt == 0:
            _, i = _read_varint(buf, i)
        else:
            raise ValueError(f"unexpected wire type {wt}")
    return ""


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--address", required=True, help="containerd's gRPC socket")
    ap.add_argument("--api", default="v1", choices=["v1", "v1alpha2"])
    ap.add_argument("--remove", action="store_true", help="RemoveImage instead of PullImage")
    ap.add_argument("--timeout", type=float, default=1800)
    ap.add_argument("images", nargs="+")
    args = ap.parse_args()

    ident = lambda b: b  # noqa: E731
    with grpc.insecure_channel(f"unix://{args.address}") as ch:
        method = "RemoveImage" if args.remove else "PullImage"
        call = ch.unary_unary(f"/runtime.{args.api}.ImageService/{method}",
                              request_serializer=ident, response_deserializer=ident)
        rc = 0
        for image in args.images:
            t0 = time.monotonic()
            try:
                req = remove_request(image) if args.remove else pull_request(image)
                resp = call(req, timeout=args.timeout)
            except grpc.RpcError as e:
                print(f"{image}: {method} failed: {e.code().name}: {e.details()}", file=sys.stderr)
                rc = 1
                continue
            ref = "-" if args.remove else first_string_field(resp)
            print(f"{image} {ref} {time.monotonic() - t0:.3f}", flush=True)
        return rc


if __name__ == "__main__":
    sys.exit(main())
