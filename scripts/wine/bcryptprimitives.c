/* Wine 8 (Debian bookworm) has no bcryptprimitives.dll, whose ProcessPrng Rust's standard library
 * uses for random numbers on Windows. This stand-in, built by scripts/toolchains.sh with mingw-w64
 * and put into the private Wine prefix only, answers it with RtlGenRandom (advapi32's
 * SystemFunction036), which Wine has. It never ships: it exists for running tests under Wine. */
#include <windows.h>

BOOLEAN WINAPI SystemFunction036(PVOID buffer, ULONG length);

BOOL WINAPI ProcessPrng(PBYTE data, SIZE_T length) {
    while (length > 0) {
        ULONG chunk = length > 0x40000000 ? 0x40000000 : (ULONG)length;
        if (!SystemFunction036(data, chunk)) return FALSE;
        data += chunk;
        length -= chunk;
    }
    return TRUE;
}
