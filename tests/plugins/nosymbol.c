/*
 * nosymbol.c - a shared object that is not a mainstack component: it
 * exports a function, but not mainstack_component. The loader must refuse it
 * with "not a mainstack component" naming the file.
 */
int nosymbol_answer(void);
int nosymbol_answer(void)
{
    return 42;
}
