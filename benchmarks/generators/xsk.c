// SPDX-License-Identifier: GPL-2.0
/* Candidate lab generator: AF_XDP TX in copy mode through libxdp's xsk API (no XDP program is
 * loaded: TX only). Sends N copies of a frame read from stdin (hex) out of queue 0 of IFNAME,
 * counts completions, prints frames/s:   xsk IFNAME N < frame.hex */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <time.h>
#include <linux/if_link.h>
#include <linux/if_xdp.h>
#include <xdp/xsk.h>

#define NFRAMES 4096
#define FSIZE 2048

int main(int argc, char **argv)
{
	struct xsk_umem_config ucfg = { .fill_size = NFRAMES, .comp_size = NFRAMES,
					.frame_size = FSIZE };
	struct xsk_socket_config scfg = { .rx_size = 2048, .tx_size = 2048,
		.libxdp_flags = XSK_LIBXDP_FLAGS__INHIBIT_PROG_LOAD,
		.xdp_flags = XDP_FLAGS_SKB_MODE, .bind_flags = XDP_COPY };
	struct xsk_ring_prod fq, tx;
	struct xsk_ring_cons cq, rx;
	struct xsk_umem *umem;
	struct xsk_socket *xsk;
	unsigned char frame[FSIZE];
	char hex[2 * FSIZE + 8];
	unsigned nfree = NFRAMES, next = 0;
	long n, sent = 0, done = 0;
	size_t flen = 0;
	struct timespec a, b;
	void *buf;
	int r;

	if (argc != 3 || !fgets(hex, sizeof(hex), stdin))
		return fprintf(stderr, "usage: xsk IFNAME N < frame.hex\n"), 2;
	while (flen < FSIZE && sscanf(hex + 2 * flen, "%2hhx", &frame[flen]) == 1)
		flen++;
	n = atol(argv[2]);
	buf = mmap(NULL, NFRAMES * FSIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (buf == MAP_FAILED)
		return perror("mmap"), 1;
	r = xsk_umem__create(&umem, buf, NFRAMES * FSIZE, &fq, &cq, &ucfg);
	if (!r)
		r = xsk_socket__create(&xsk, argv[1], 0, umem, &rx, &tx, &scfg);
	if (r)
		return fprintf(stderr, "xsk: %s\n", strerror(-r)), 1;
	for (int i = 0; i < NFRAMES; i++)
		memcpy((char *)buf + (size_t)i * FSIZE, frame, flen);
	clock_gettime(CLOCK_MONOTONIC, &a);
	while (done < n) {
		unsigned want = n - sent < 64 ? n - sent : 64, k, c;
		__u32 idx;

		if (want > nfree)
			want = nfree;
		if (want && (k = xsk_ring_prod__reserve(&tx, want, &idx))) {
			for (unsigned i = 0; i < k; i++, next = (next + 1) % NFRAMES) {
				struct xdp_desc *d = xsk_ring_prod__tx_desc(&tx, idx + i);

				d->addr = (__u64)next * FSIZE;
				d->len = flen;
			}
			xsk_ring_prod__submit(&tx, k);
			sent += k;
			nfree -= k;
		}
		if (sendto(xsk_socket__fd(xsk), NULL, 0, MSG_DONTWAIT, NULL, 0) < 0 &&
		    errno != EAGAIN && errno != EBUSY && errno != ENOBUFS)
			return perror("sendto"), 1;
		c = xsk_ring_cons__peek(&cq, 64, &idx);
		xsk_ring_cons__release(&cq, c);
		nfree += c;
		done += c;
	}
	clock_gettime(CLOCK_MONOTONIC, &b);
	printf("%.0f\n", n / (b.tv_sec - a.tv_sec + (b.tv_nsec - a.tv_nsec) / 1e9));
	return 0;
}
