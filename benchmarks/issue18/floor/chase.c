/* User-space control for floor.bpf.c: the same walk (probes of 4 dependent reads, each a random
 * cache line of the region) over anonymous memory with transparent huge pages off or on, to see
 * what page size is worth on this machine (a BPF map cannot have huge pages).
 *   gcc -O2 -o /tmp/chase chase.c && /tmp/chase MIB HUGE(0|1) PROBES */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>

static double now(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return t.tv_sec + t.tv_nsec * 1e-9;
}

static uint64_t rnd(uint64_t *s)          /* xorshift64 */
{
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return *s;
}

int main(int argc, char **argv)
{
	size_t mib, probes, lines, i, huge_kb = 0;
	uint64_t *a, *start, s = 88172645463325252ull, acc = 0;
	double best = 1e9;
	char line[256];
	int huge, r, rep;
	FILE *f;

	if (argc != 4)
		return 2;
	mib = strtoul(argv[1], NULL, 0);
	huge = atoi(argv[2]);
	probes = strtoul(argv[3], NULL, 0);
	lines = (mib << 20) / 64;
	a = mmap(NULL, (mib << 20) + (2 << 20), PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (a == MAP_FAILED)
		return 1;
	a = (uint64_t *)(((uintptr_t)a + (2 << 20) - 1) & ~(uintptr_t)((2 << 20) - 1));
	madvise(a, mib << 20, huge ? MADV_HUGEPAGE : MADV_NOHUGEPAGE);
	for (i = 0; i < lines; i++)
		a[i * 8] = rnd(&s) % lines * 8;  /* the first word of each line: the next line */
	start = malloc(probes * sizeof(*start));
	for (i = 0; i < probes; i++)
		start[i] = rnd(&s) % lines * 8;
	for (r = 0; r < 7; r++) {
		double t0 = now(), t;

		for (rep = 0; rep < 20; rep++)
			for (i = 0; i < probes; i++)
				acc += a[a[a[a[start[i]]]]];
		t = (now() - t0) / (20.0 * probes) * 1e9;
		if (t < best)
			best = t;
	}
	f = fopen("/proc/self/smaps_rollup", "r");
	while (f && fgets(line, sizeof(line), f))
		if (!strncmp(line, "AnonHugePages:", 14))
			huge_kb = strtoul(line + 14, NULL, 10);
	printf("%zu MiB, huge pages %s, %zu probes: %.1f ns per probe (AnonHugePages %zu kB) %s\n",
	       mib, huge ? "on" : "off", probes, best, huge_kb, acc == 42 ? "!" : "");
	return 0;
}
