# SPDX-License-Identifier: Apache-2.0
# Builds BPF C programs into CO-RE objects and libbpf skeletons.
#
# vmlinux.h is generated from the build machine's BTF: the objects are CO-RE, so the kernel they run on
# may differ; relocations are resolved at load time against that kernel's BTF.

find_program(BPF_CLANG NAMES clang clang-14 REQUIRED)
find_program(BPFTOOL NAMES bpftool PATHS /usr/sbin /usr/local/sbin REQUIRED)
find_program(LLVM_STRIP NAMES llvm-strip llvm-strip-14 REQUIRED)

set(SOCKMESH_VMLINUX_DIR ${CMAKE_BINARY_DIR}/bpf/vmlinux)
set(SOCKMESH_VMLINUX_H ${SOCKMESH_VMLINUX_DIR}/vmlinux.h)
set(SOCKMESH_KERNEL_BTF /sys/kernel/btf/vmlinux CACHE FILEPATH "Kernel BTF used to generate vmlinux.h")

add_custom_command(
  OUTPUT ${SOCKMESH_VMLINUX_H}
  COMMAND ${CMAKE_COMMAND} -E make_directory ${SOCKMESH_VMLINUX_DIR}
  COMMAND ${BPFTOOL} btf dump file ${SOCKMESH_KERNEL_BTF} format c > ${SOCKMESH_VMLINUX_H}.tmp
  COMMAND ${CMAKE_COMMAND} -E rename ${SOCKMESH_VMLINUX_H}.tmp ${SOCKMESH_VMLINUX_H}
  COMMENT "Generating vmlinux.h from ${SOCKMESH_KERNEL_BTF}"
  VERBATIM)
add_custom_target(sockmesh_vmlinux DEPENDS ${SOCKMESH_VMLINUX_H})

if(CMAKE_SYSTEM_PROCESSOR MATCHES "x86_64|AMD64")
  set(SOCKMESH_BPF_ARCH x86)
elseif(CMAKE_SYSTEM_PROCESSOR MATCHES "aarch64|arm64")
  set(SOCKMESH_BPF_ARCH arm64)
else()
  set(SOCKMESH_BPF_ARCH ${CMAKE_SYSTEM_PROCESSOR})
endif()

# sockmesh_bpf_object(NAME SRC) compiles SRC into NAME.bpf.o, generates NAME.skel.h and defines an
# interface target NAME_skel that puts the skeleton and libbpf on a consumer's include/link line.
# A depfile makes header edits (bpf/lib, bpf/include) rebuild the object.
function(sockmesh_bpf_object NAME SRC)
  set(out_dir ${CMAKE_BINARY_DIR}/bpf/${NAME})
  set(obj ${out_dir}/${NAME}.bpf.o)
  set(skel ${out_dir}/${NAME}.skel.h)
  get_filename_component(src_abs ${SRC} ABSOLUTE)
  add_custom_command(
    OUTPUT ${obj}
    COMMAND ${CMAKE_COMMAND} -E make_directory ${out_dir}
    COMMAND ${BPF_CLANG} -g -O2 -target bpf -D__TARGET_ARCH_${SOCKMESH_BPF_ARCH}
            -Wall -Werror -Wno-unused-function
            -I${SOCKMESH_VMLINUX_DIR} -I${CMAKE_SOURCE_DIR}/bpf/include -I${CMAKE_SOURCE_DIR}/bpf
            -MD -MF ${obj}.d -c ${src_abs} -o ${obj}.unstripped
    # Strip DWARF but keep BTF: smaller object, same CO-RE information.
    COMMAND ${LLVM_STRIP} -g ${obj}.unstripped -o ${obj}
    DEPENDS ${src_abs} ${SOCKMESH_VMLINUX_H}
    DEPFILE ${obj}.d
    COMMENT "BPF ${NAME}: compiling ${SRC}"
    VERBATIM)
  add_custom_command(
    OUTPUT ${skel}
    COMMAND ${BPFTOOL} gen skeleton ${obj} name ${NAME} > ${skel}.tmp
    COMMAND ${CMAKE_COMMAND} -E rename ${skel}.tmp ${skel}
    DEPENDS ${obj}
    COMMENT "BPF ${NAME}: generating skeleton"
    VERBATIM)
  add_custom_target(${NAME}_skel_gen DEPENDS ${skel})
  add_library(${NAME}_skel INTERFACE)
  add_dependencies(${NAME}_skel ${NAME}_skel_gen)
  target_include_directories(${NAME}_skel INTERFACE ${out_dir})
  target_link_libraries(${NAME}_skel INTERFACE PkgConfig::LIBBPF)
  set_property(GLOBAL APPEND PROPERTY SOCKMESH_BPF_OBJECTS ${obj})
endfunction()
