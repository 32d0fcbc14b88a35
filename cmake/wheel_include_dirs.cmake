# The ros-jazzy-* PyPI wheels export *__rosidl_generator_py (and typesupport) targets whose include
# directories name the machine the wheels were built on; CMake's generate step rejects paths that do not
# exist. cliport_drop_missing_include_dirs(<package>...) drops such entries from those packages' targets
# (a no-op on a normal ROS install, where every path exists). Call it after find_package() of the packages.
function(cliport_drop_missing_include_dirs)
  foreach(_pkg IN LISTS ARGN)
    foreach(_suffix __rosidl_generator_py __rosidl_typesupport_c __rosidl_generator_c
                    __rosidl_typesupport_fastrtps_c __rosidl_typesupport_introspection_c)
      set(_target "${_pkg}::${_pkg}${_suffix}")
      if(TARGET ${_target})
        get_target_property(_dirs ${_target} INTERFACE_INCLUDE_DIRECTORIES)
        if(_dirs)
          set(_kept "")
          foreach(_dir IN LISTS _dirs)
            if(_dir MATCHES "^\\$<" OR EXISTS "${_dir}")
              list(APPEND _kept "${_dir}")
            endif()
          endforeach()
          set_target_properties(${_target} PROPERTIES INTERFACE_INCLUDE_DIRECTORIES "${_kept}")
        endif()
      endif()
    endforeach()
  endforeach()
endfunction()
