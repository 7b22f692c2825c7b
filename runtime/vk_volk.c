/* volk's implementation, compiled once into the library. volk opens libvulkan.so.1 with
 * dlopen at run time, so the program starts even on a machine without a Vulkan loader. */
#include <volk.c>
