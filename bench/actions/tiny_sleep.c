/*
 * tiny_sleep.c - a minimal action program for the agents benchmark: sleeps
 * for the milliseconds given as its only argument and exits 0, with no C
 * library at all (no dynamic loader, no libc start-up), so that starting it
 * costs the kernel's exec and nothing else.
 */
#include <stddef.h>

typedef struct {
    long tv_sec;
    long tv_nsec;
} ts;

static long sys3(long n, long a, long b, long c)
{
    long r;
    __asm__ volatile("syscall" : "=a"(r) : "a"(n), "D"(a), "S"(b), "d"(c) : "rcx", "r11", "memory");
    return r;
}

__attribute__((noreturn, used)) static void start_c(long *sp)
{
    long argc = sp[0];
    char **argv = (char **)(sp + 1);
    long ms = 1000;

    if (argc > 1) {
        ms = 0;
        for (const char *p = argv[1]; *p >= '0' && *p <= '9'; p++)
            ms = ms * 10 + (*p - '0');
    }
    ts t = {ms / 1000, (ms % 1000) * 1000000L};
    while (sys3(35 /* nanosleep */, (long)&t, (long)&t, 0) == -4 /* EINTR */)
        ;
    sys3(231 /* exit_group */, 0, 0, 0);
    for (;;)
        ;
}

__asm__(".globl _start\n_start:\n  mov %rsp, %rdi\n  and $-16, %rsp\n  call start_c\n");
