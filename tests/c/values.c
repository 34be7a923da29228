/* Values as a C programmer reads them, traced live with uprobes typed
 * by this program's own DWARF (tests/values_live.rs): bytes and
 * strings, integer arrays, enums (plain and flag-like), bools, nested
 * structs, arrays of structs, function pointers. Built with gcc -g. */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

enum state { ST_IDLE = 0, ST_RUNNING = 3, ST_DONE = 7 };
enum perm { P_READ = 1, P_WRITE = 2, P_EXEC = 4, P_SHARED = 8 };

struct point {
	int x;
	short y;
};

struct values {
	unsigned char mac[6];
	uint32_t words[4];
	unsigned char *data;
	char name[8];
	uint8_t raw[3];
	enum state state;
	enum state unknown;
	enum perm perm;
	bool on;
	bool off;
	struct point at;
	struct point path[2];
	int (*cb)(int);
	unsigned int bits : 3;
	signed int neg : 5;
	long count;
	struct counter {
		int c;
	} counters[2];
};

/* More values than one probe takes (the kernel's 128): cut. */
struct many {
	struct point p[70];
};

static unsigned char payload[4] = { 0xde, 0xad, 0xbe, 0xef };

__attribute__((noinline)) int twice(int v)
{
	return 2 * v;
}

__attribute__((noinline)) int take(struct values *v, enum state s, bool flag)
{
	return v->words[0] + (int)s + flag;
}

__attribute__((noinline)) int take_many(struct many *m)
{
	return m->p[69].x;
}

int main(int argc, char **argv)
{
	static struct values v;
	static struct many m;
	for (int i = 0; i < 70; i++) {
		m.p[i].x = i;
		m.p[i].y = -i;
	}
	take_many(&m);
	(void)argv;
	memcpy(v.mac, "\x02\x00\x5e\x10\x20\x30", 6);
	v.words[0] = 1;
	v.words[1] = 0x10;
	v.words[2] = 0xffffffff;
	v.words[3] = 4;
	v.data = payload;
	strcpy(v.name, "values");
	v.raw[0] = 0;
	v.raw[1] = 7;
	v.raw[2] = 0x80;
	v.state = ST_RUNNING;
	v.unknown = (enum state)5;
	v.perm = P_READ | P_EXEC;
	v.on = true;
	v.off = false;
	v.at.x = -3;
	v.at.y = 9;
	v.path[0].x = 10;
	v.path[0].y = 11;
	v.path[1].x = 12;
	v.path[1].y = 13;
	v.cb = twice;
	v.bits = 5;
	v.neg = -2;
	v.count = argc;
	v.counters[0].c = 5;
	v.counters[1].c = -6;
	printf("%d %d\n", take(&v, ST_DONE, true), v.cb(1));
	if (argc > 1) {
		/* A call into the C library, its caller in this program; then
		 * alive a while, so that /proc/PID/maps says where it was. */
		puts(argv[1]);
		fflush(stdout);
		usleep(500000);
	}
	return 0;
}
