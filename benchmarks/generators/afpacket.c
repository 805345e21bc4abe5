// SPDX-License-Identifier: GPL-2.0
/* Candidate lab generators over AF_PACKET, for the measured choice in traffic/NOTES.md (the
 * project keeps the cheapest, traffic/labgen.py). Sends N copies of a frame read from stdin
 * (hex) out of IFNAME, with PACKET_QDISC_BYPASS, then prints frames/s:
 *     afpacket ring|mmsg IFNAME N < frame.hex
 * ring: a TPACKET_V2 TX_RING, flushed with send(); mmsg: sendmmsg() of 64 frames at a time. */
#define _GNU_SOURCE
#include <linux/if_packet.h>
#include <net/if.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static unsigned char frame[2048];
static size_t flen;

static double now(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return t.tv_sec + t.tv_nsec / 1e9;
}

static int send_mmsg(int fd, long n)
{
	enum { BATCH = 64 };
	struct mmsghdr m[BATCH] = {};
	struct iovec io[BATCH];
	long sent = 0;

	for (int i = 0; i < BATCH; i++) {
		io[i] = (struct iovec){ frame, flen };
		m[i].msg_hdr.msg_iov = &io[i];
		m[i].msg_hdr.msg_iovlen = 1;
	}
	while (sent < n) {
		int k = n - sent < BATCH ? n - sent : BATCH, r = sendmmsg(fd, m, k, 0);

		if (r < 0)
			return perror("sendmmsg"), 1;
		sent += r;
	}
	return 0;
}

static int send_ring(int fd, long n)
{
	struct tpacket_req req = { .tp_block_size = 1 << 16, .tp_block_nr = 64, .tp_frame_size = 2048 };
	int v = TPACKET_V2;
	unsigned cur = 0, nframes;
	long queued = 0;
	char *ring;

	req.tp_frame_nr = req.tp_block_size / req.tp_frame_size * req.tp_block_nr;
	nframes = req.tp_frame_nr;
	if (setsockopt(fd, SOL_PACKET, PACKET_VERSION, &v, sizeof(v)) ||
	    setsockopt(fd, SOL_PACKET, PACKET_TX_RING, &req, sizeof(req)))
		return perror("tx ring"), 1;
	ring = mmap(NULL, (size_t)req.tp_block_size * req.tp_block_nr, PROT_READ | PROT_WRITE,
		    MAP_SHARED, fd, 0);
	if (ring == MAP_FAILED)
		return perror("mmap"), 1;
	while (queued < n) {
		int put = 0;

		for (; queued < n; queued++, put++, cur = (cur + 1) % nframes) {
			struct tpacket2_hdr *h = (void *)(ring + (size_t)cur * req.tp_frame_size);

			if (__atomic_load_n(&h->tp_status, __ATOMIC_ACQUIRE) != TP_STATUS_AVAILABLE)
				break;
			memcpy((char *)h + TPACKET2_HDRLEN - sizeof(struct sockaddr_ll), frame, flen);
			h->tp_len = flen;
			__atomic_store_n(&h->tp_status, TP_STATUS_SEND_REQUEST, __ATOMIC_RELEASE);
		}
		if (send(fd, NULL, 0, 0) < 0)
			return perror("send"), 1;
		if (!put) {
			struct pollfd p = { fd, POLLOUT, 0 };

			poll(&p, 1, 10);
		}
	}
	return send(fd, NULL, 0, 0) < 0;
}

int main(int argc, char **argv)
{
	char hex[4200];
	struct sockaddr_ll sll = { .sll_family = AF_PACKET };
	int fd, one = 1, rc;
	long n;
	double t0;

	if (argc != 4 || !fgets(hex, sizeof(hex), stdin))
		return fprintf(stderr, "usage: afpacket ring|mmsg IFNAME N < frame.hex\n"), 2;
	for (flen = 0; flen < sizeof(frame) && sscanf(hex + 2 * flen, "%2hhx", &frame[flen]) == 1; flen++)
		;
	n = atol(argv[3]);
	sll.sll_ifindex = if_nametoindex(argv[2]);
	fd = socket(AF_PACKET, SOCK_RAW, 0);
	if (fd < 0 || setsockopt(fd, SOL_PACKET, PACKET_QDISC_BYPASS, &one, sizeof(one)))
		return perror("socket"), 1;
	t0 = now();
	if (!strcmp(argv[1], "ring")) {
		/* the ring is set up before bind, so its pages are mapped once */
		if (bind(fd, (void *)&sll, sizeof(sll)) && (perror("bind"), 1))
			return 1;
		rc = send_ring(fd, n);
	} else {
		if (bind(fd, (void *)&sll, sizeof(sll)))
			return perror("bind"), 1;
		rc = send_mmsg(fd, n);
	}
	if (!rc)
		printf("%.0f\n", n / (now() - t0));
	return rc;
}
