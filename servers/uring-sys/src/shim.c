/*
 * liburing's per-operation helpers are `static inline` in liburing.h, so they have no symbol Rust
 * could link to. Each function here forwards its arguments, unchanged, to the liburing helper of
 * the same name without the `shim_` prefix; nothing else happens in this file. The exported
 * functions (io_uring_queue_init, io_uring_submit, ...) are declared directly in lib.rs.
 *
 * One addition: shim_io_uring_new/free allocate `struct io_uring`, whose layout belongs to
 * liburing, so that Rust only ever holds a pointer to it.
 */
#include <errno.h>
#include <stddef.h>
#include <stdlib.h>

#include <liburing.h>

/* lib.rs reads completions through its own copy of these kernel ABI structs. */
_Static_assert(sizeof(struct io_uring_cqe) == 16, "struct io_uring_cqe");
_Static_assert(offsetof(struct io_uring_cqe, user_data) == 0, "io_uring_cqe.user_data");
_Static_assert(offsetof(struct io_uring_cqe, res) == 8, "io_uring_cqe.res");
_Static_assert(offsetof(struct io_uring_cqe, flags) == 12, "io_uring_cqe.flags");
_Static_assert(sizeof(struct __kernel_timespec) == 16, "struct __kernel_timespec");

/* io_uring_queue_init on a heap-allocated ring: 0 and *out set, or -errno. */
int shim_io_uring_new(unsigned entries, unsigned flags, struct io_uring **out)
{
	struct io_uring *ring = calloc(1, sizeof(*ring));
	int ret;

	if (!ring)
		return -ENOMEM;
	ret = io_uring_queue_init(entries, ring, flags);
	if (ret < 0) {
		free(ring);
		return ret;
	}
	*out = ring;
	return 0;
}

void shim_io_uring_free(struct io_uring *ring)
{
	io_uring_queue_exit(ring);
	free(ring);
}

struct io_uring_sqe *shim_io_uring_get_sqe(struct io_uring *ring)
{
	return io_uring_get_sqe(ring);
}

void shim_io_uring_sqe_set_data64(struct io_uring_sqe *sqe, __u64 data)
{
	io_uring_sqe_set_data64(sqe, data);
}

void shim_io_uring_prep_accept(struct io_uring_sqe *sqe, int fd, struct sockaddr *addr,
			       socklen_t *addrlen, int flags)
{
	io_uring_prep_accept(sqe, fd, addr, addrlen, flags);
}

void shim_io_uring_prep_recv(struct io_uring_sqe *sqe, int sockfd, void *buf, size_t len,
			     int flags)
{
	io_uring_prep_recv(sqe, sockfd, buf, len, flags);
}

void shim_io_uring_prep_send(struct io_uring_sqe *sqe, int sockfd, const void *buf, size_t len,
			     int flags)
{
	io_uring_prep_send(sqe, sockfd, buf, len, flags);
}

void shim_io_uring_prep_read(struct io_uring_sqe *sqe, int fd, void *buf, unsigned nbytes,
			     __u64 offset)
{
	io_uring_prep_read(sqe, fd, buf, nbytes, offset);
}

void shim_io_uring_prep_close(struct io_uring_sqe *sqe, int fd)
{
	io_uring_prep_close(sqe, fd);
}

void shim_io_uring_prep_timeout(struct io_uring_sqe *sqe, struct __kernel_timespec *ts,
				unsigned count, unsigned flags)
{
	io_uring_prep_timeout(sqe, ts, count, flags);
}

void shim_io_uring_prep_cancel64(struct io_uring_sqe *sqe, __u64 user_data, int flags)
{
	io_uring_prep_cancel64(sqe, user_data, flags);
}

int shim_io_uring_peek_cqe(struct io_uring *ring, struct io_uring_cqe **cqe_ptr)
{
	return io_uring_peek_cqe(ring, cqe_ptr);
}

void shim_io_uring_cqe_seen(struct io_uring *ring, struct io_uring_cqe *cqe)
{
	io_uring_cqe_seen(ring, cqe);
}
