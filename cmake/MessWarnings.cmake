# Warning and sanitizer flags shared by every MESS target: call mess_target_defaults(<target>).
function(mess_target_defaults target)
  target_compile_options(${target} PRIVATE $<$<COMPILE_LANGUAGE:CXX>:-Wall -Wextra -Wpedantic -Wshadow -Wconversion
                         -Wno-sign-conversion -Wnon-virtual-dtor -Wcast-align
                         -Wno-restrict>)  # GCC 12 false positive on std::string + at -O3 (GCC PR105329)
  if(MESS_WERROR)
    target_compile_options(${target} PRIVATE $<$<COMPILE_LANGUAGE:CXX>:-Werror> $<$<COMPILE_LANGUAGE:CUDA>:-Werror=all-warnings>)
  endif()
endfunction()

# mess_glue_optimisation(<target>): -O1 for code whose speed does not matter (tests, command-line glue) in
# optimised builds. At -O3 most of their compile time goes to optimising CLI11, JSON and GoogleTest
# templates (about 80 % of a command file's time); the libraries they call keep their own flags.
# GCC 12's -Warray-bounds / -Wstringop-overflow misfire inside libstdc++'s std::string at these levels
# (GCC PR105329, PR105651), so they are off for this glue code only.
# In sanitizer builds (MESS_SANITIZE) the glue compiles at -O0: the checks that matter are in the libraries'
# code, which keeps the preset's -O1, and a test source compiles in about half the time (test_search.cpp:
# 44 s at -O1 -g, 30 s at -O1 -g1, 16.5 s at -O0 -g1).
function(mess_glue_optimisation target)
  target_compile_options(${target} PRIVATE $<$<AND:$<COMPILE_LANGUAGE:CXX>,$<CONFIG:Release>>:-O1>
                         $<$<COMPILE_LANGUAGE:CXX>:-Wno-array-bounds -Wno-stringop-overflow>)
  if(MESS_SANITIZE)
    target_compile_options(${target} PRIVATE $<$<COMPILE_LANGUAGE:CXX>:-O0>)
  endif()
endfunction()

# mess_precompile(<target> <header>...): precompiles the given third-party headers for <target> (MESS_PCH).
function(mess_precompile target)
  if(MESS_PCH)
    target_precompile_headers(${target} PRIVATE ${ARGN})
  endif()
endfunction()

if(MESS_SANITIZE)
  add_compile_options("$<$<COMPILE_LANGUAGE:C,CXX>:-fsanitize=address,undefined;-fno-omit-frame-pointer;-fno-sanitize-recover=undefined>")
  add_link_options(-fsanitize=address,undefined)
endif()
