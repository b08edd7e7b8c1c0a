# Warning and sanitizer flags shared by every MESS target: call mess_target_defaults(<target>).
function(mess_target_defaults target)
  target_compile_options(${target} PRIVATE -Wall -Wextra -Wpedantic -Wshadow -Wconversion
                         -Wno-sign-conversion -Wnon-virtual-dtor -Wcast-align
                         -Wno-restrict)  # GCC 12 false positive on std::string + at -O3 (GCC PR105329)
  if(MESS_WERROR)
    target_compile_options(${target} PRIVATE -Werror)
  endif()
endfunction()

if(MESS_SANITIZE)
  add_compile_options(-fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined)
  add_link_options(-fsanitize=address,undefined)
endif()
