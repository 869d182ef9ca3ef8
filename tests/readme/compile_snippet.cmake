# Cuts the code between "<!-- snippet:usage -->" and "<!-- /snippet:usage -->" out of README.md
# (dropping the ``` fences) and compiles it with nvcc, so the README's example cannot rot.
file(READ ${README} text)
string(FIND "${text}" "<!-- snippet:usage -->" begin)
string(FIND "${text}" "<!-- /snippet:usage -->" end)
if(begin EQUAL -1 OR end EQUAL -1)
  message(FATAL_ERROR "README.md has no usage snippet markers")
endif()
math(EXPR begin "${begin} + 22")
math(EXPR length "${end} - ${begin}")
string(SUBSTRING "${text}" ${begin} ${length} snippet)
string(REGEX REPLACE "```[a-z+]*" "" snippet "${snippet}")
file(MAKE_DIRECTORY ${OUT_DIR})
file(WRITE ${OUT_DIR}/readme_usage.cu "${snippet}")
execute_process(COMMAND ${NVCC} -std=c++17 -arch=sm_90 -I${INCLUDE_DIR} -c ${OUT_DIR}/readme_usage.cu -o ${OUT_DIR}/readme_usage.o
                RESULT_VARIABLE rc)
if(rc)
  message(FATAL_ERROR "the README usage snippet does not compile")
endif()
