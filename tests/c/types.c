/* Types for the DWARF reader's tests: compiled with gcc -g (DWARF 4 and
 * 5, PIE and not) and compared with pahole reading the same DWARF. */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

enum color { RED = -1, GREEN, BLUE = 7 };
enum big { SMALL = 1, HUGE = 0x100000000ULL };

typedef unsigned int u32_t;
typedef u32_t flags_t;
typedef const flags_t cflags_t;

struct inner {
	int a;
	char tag[6];
	short b;
};

typedef struct inner inner_t;
typedef inner_t inner2_t;

struct bits {
	unsigned int lo : 3;
	unsigned int mid : 7;
	signed int neg : 5;
	unsigned int : 0;
	unsigned char c1 : 1;
	unsigned char c2 : 7;
	unsigned long long wide : 40;
	unsigned long long rest : 24;
	bool flag : 1;
	enum color col : 4;
	uint16_t across : 12;
};

struct __attribute__((packed)) packed {
	char c;
	int i;
	unsigned int pbits : 9;
	long l;
};

struct holder {
	int kind;
	union {
		int as_int;
		float as_float;
		struct {
			unsigned short lo16;
			unsigned short hi16;
		};
	};
	struct {
		char x;
		long y;
	} named_anon;
	union {
		struct inner in;
		char raw[12];
	} u;
	int matrix[2][3];
	char cube[2][3][4];
	inner2_t arr_of_structs[3];
	cflags_t flags;
	const volatile int *cvp;
	char *volatile restrict_me;
	const char *name;
	char comm[16];
	enum color color;
	enum big big;
	int (*callback)(struct holder *self, const char *why, ...);
	void (*handlers[4])(int);
	struct holder *next;
	_Alignas(64) long aligned;
	size_t count;
	char tail[];
};

union top {
	struct bits b;
	struct packed p;
	uint64_t words[4];
};

struct fwd_only;
struct uses_fwd {
	struct fwd_only *opaque;
	int after;
};

__attribute__((noinline)) int probe_me(struct holder *h, const char *label, int n)
{
	return h->kind + (int)strlen(label) + n + h->matrix[1][2];
}

__attribute__((noinline)) long sum_all(int count, ...)
{
	return count;
}

int main(int argc, char **argv)
{
	static struct holder h;
	union top t;
	struct bits b = { 0 };
	struct packed p = { 0 };
	struct uses_fwd f = { 0 };
	memset(&t, 0, sizeof(t));
	h.kind = argc;
	strcpy(h.comm, "holder");
	h.name = argv[0];
	h.matrix[1][2] = 7;
	strcpy(h.u.in.tag, "tg");
	h.hi16 = 0x1234;
	h.next = &h;
	b.lo = 1;
	p.i = 2;
	f.after = 3;
	printf("%d %d %d %d %ld\n", probe_me(&h, "x", b.lo), p.i, f.after,
	       (int)t.words[0], sum_all(1, 2));
	return 0;
}
